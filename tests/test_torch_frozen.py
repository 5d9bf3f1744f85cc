"""The torch backend's frozen per-frame graphs (`TorchBackend(frozen=True)`, what `create_backend` builds
on the CPU) compute what the eager modules compute, for learned, prior and hybrid tiny models."""
import dataclasses

import pytest
import torch

from sdk.models import Keypoints, SourceState, TalkingHeadModel, get_config
from sdk.runtime import TorchBackend, create_backend
from sdk.runtime.factory import neutral_avatar_mesh
from sdk.runtime.torch_backend import FrozenSourceState

pytestmark = pytest.mark.usefixtures("single_thread")
TOLERANCE = 1e-4  # float rounding of the folded BatchNorm and oneDNN's own kernels


def _inputs(model: TalkingHeadModel):
    generator = torch.Generator().manual_seed(1)
    size, side = model.cfg.default_output_size, model.cfg.resolution
    portrait = torch.rand((1, 3, size, size), generator=generator)
    frame = torch.rand((1, 3, side, side), generator=generator)
    mesh = None if model.cfg.semantic is None else neutral_avatar_mesh(model.prior(), size)
    return portrait, frame, mesh


@pytest.mark.parametrize("name", ["dagan++-tiny", "fomm-tiny", "fomm-tiny-prior", "fomm-tiny-hybrid"])
def test_frozen_graphs_match_the_eager_modules(name):
    torch.manual_seed(0)
    model = TalkingHeadModel(get_config(name)).eval()
    eager, frozen = TorchBackend(model), TorchBackend(model, frozen=True)
    portrait, frame, mesh = _inputs(model)
    eager_state, frozen_state = eager.prepare_source(portrait, mesh), frozen.prepare_source(portrait, mesh)
    assert type(eager_state) is SourceState and isinstance(frozen_state, FrozenSourceState)
    assert frozen_state.frame_graph is not None
    if model.cfg.num_kp:
        expected, got = eager.encode(frame), frozen.encode(frame)
        assert torch.allclose(expected.value, got.value, atol=TOLERANCE)
        assert torch.allclose(expected.jacobian, got.jacobian, atol=TOLERANCE)
    # Driving keypoints away from the avatar's own: the graph must not take them for the source's.
    source = frozen_state.keypoints
    driving = Keypoints(source.value + 0.05, source.jacobian * 1.1)
    expression = None
    if model.cfg.semantic is not None:
        expression = 0.3 * torch.randn((1, model.cfg.semantic.expression_dims),
                                       generator=torch.Generator().manual_seed(2))
    for step in range(2):  # the graph is reused frame after frame
        moved = Keypoints(driving.value + 0.01 * step, driving.jacobian)
        expected = eager.render(eager_state, moved, expression)
        got = frozen.render(frozen_state, moved, expression)
        assert got.shape == expected.shape and (got - expected).abs().max() <= TOLERANCE
    assert (frozen.render(frozen_state, source, expression) - got).abs().max() > 1e-3  # it follows its inputs


def test_frozen_falls_back_to_the_modules_for_other_shapes_and_plain_states(tiny_model):
    frozen = TorchBackend(tiny_model, frozen=True)
    portrait, frame, _ = _inputs(tiny_model)
    state = frozen.prepare_source(portrait)
    code = frozen.encode(frame)
    expected = frozen.render(state, code)
    # Keypoints not of the traced shapes (here: a state claiming other ones) and plain states render eagerly.
    other_shapes = dataclasses.replace(state, traced_shapes=((2, *code.value.shape[1:]),))
    plain = SourceState(**{field.name: getattr(state, field.name) for field in dataclasses.fields(SourceState)})
    for fallback in (other_shapes, plain):
        assert (frozen.render(fallback, code) - expected).abs().max() <= TOLERANCE


def test_create_backend_freezes_torch_on_the_cpu(tiny_model):
    backend = create_backend(tiny_model, "torch")
    assert isinstance(backend, TorchBackend) and backend.frozen and backend.name == "torch-cpu"
    assert not TorchBackend(tiny_model).frozen  # the reference stays the eager modules


def test_a_stage_overridden_on_the_model_object_is_not_traced(tiny_model):
    """A slowed or wrapped render must keep running each frame, not be baked into a graph once."""
    calls = []
    wrapped = TalkingHeadModel(tiny_model.cfg).eval()
    render = wrapped.render
    wrapped.render = lambda *args: calls.append(1) or render(*args)
    backend = TorchBackend(wrapped, frozen=True)
    portrait, frame, _ = _inputs(wrapped)
    state = backend.prepare_source(portrait)
    backend.render(state, backend.encode(frame))
    backend.render(state, backend.encode(frame))
    assert not backend.frozen and type(state) is SourceState and len(calls) == 2
