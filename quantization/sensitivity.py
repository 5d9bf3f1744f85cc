"""Per-layer sensitivity: how much each layer alone, quantized, changes the rendered frames.

For every Conv / MatMul layer of every graph, a model with only that layer quantized (all
others float, `qdq.dequantize_except`) renders the calibration pairs; the mean squared error of
its frames against the float frames is the layer's cost. Errors of independent layers roughly
add, so `choose_float_layers` keeps the costliest layers in float until the summed cost of the
quantized rest fits the PSNR target. Frames are always the generator's output: a keypoint
encoder layer is judged by the frames its keypoints render, not by the keypoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .qdq import Feeds, dequantize_except, ort_session, quantized_layers

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class LayerSensitivity:
    graph: str
    layer: str  # ONNX node name, e.g. "/up.2/up.2.0/Conv"
    op_type: str
    mse: float  # frames with only this layer quantized vs float frames, [0, 1] pixel scale
    psnr_db: float


class FrameRenderer:
    """Renders calibration pairs through the model's graphs, any one of them swapped for a variant.

    feeds: the fp32 torch inputs of every graph (`calibration.graph_feeds`); float_models: the
    float ONNX graphs by name. Inputs the swapped graph does not change are reused.
    """

    def __init__(self, feeds: dict[str, list[Feeds]], float_models: dict):
        self.feeds = feeds
        self.generator = ort_session(float_models["generator"])
        self.source_outputs = [output.name for output in float_models["source_encoder"].graph.output]
        self.reference = self.render({})

    def render(self, variants: dict) -> list[np.ndarray]:
        """(1, 3, S, S) frames of every pair, with `variants` (graph name -> session) replacing float graphs."""
        frames = []
        for index, generator_feeds in enumerate(self.feeds["generator"]):
            feeds = dict(generator_feeds)
            if "keypoint_encoder" in variants:
                keypoints, jacobians = variants["keypoint_encoder"].run(None, self.feeds["keypoint_encoder"][index])
                feeds.update(driving_keypoints=_learned_last(feeds["driving_keypoints"], keypoints),
                             driving_jacobians=_learned_last(feeds["driving_jacobians"], jacobians))
            if "source_encoder" in variants:
                run = variants["source_encoder"].run(None, self.feeds["source_encoder"][index])
                outputs = dict(zip(self.source_outputs, run))
                feeds.update({name: value for name, value in outputs.items() if name in feeds})
                if "learned_keypoints" in outputs:  # hybrid: the source's learned keypoints follow the prior's
                    feeds.update(
                        source_keypoints=_learned_last(feeds["source_keypoints"], outputs["learned_keypoints"]),
                        source_jacobians=_learned_last(feeds["source_jacobians"], outputs["learned_jacobians"]))
            frames.append(variants.get("generator", self.generator).run(None, feeds)[0])
        return frames

    def mse(self, frames: list[np.ndarray]) -> float:
        return float(np.mean([np.mean((frame - reference) ** 2) for frame, reference in zip(frames, self.reference)]))


def _learned_last(keypoints: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """The generator's keypoints (1, K, ...) with their last `learned.shape[1]` replaced by `learned`:
    all of them for learned keypoints, the ones after the face prior's for hybrid models."""
    return np.concatenate([keypoints[:, :keypoints.shape[1] - learned.shape[1]], learned], axis=1)


def psnr_from_mse(mse: float) -> float:
    return float(-10.0 * np.log10(max(mse, 1e-10)))


def layer_sensitivity(renderer: FrameRenderer, quantized: dict, float_models: dict,
                      progress: ProgressFn | None = None) -> list[LayerSensitivity]:
    """Cost of every quantized layer of every graph alone; `quantized` holds the fully quantized graphs."""
    results = []
    for graph, model in quantized.items():
        op_types = {node.name: node.op_type for node in model.graph.node}
        layers = quantized_layers(model)
        for number, layer in enumerate(layers, 1):
            if progress:
                progress(f"sensitivity {graph} {number}/{len(layers)} {layer}")
            single = dequantize_except(model, float_models[graph], layer)
            mse = renderer.mse(renderer.render({graph: ort_session(single)}))
            results.append(LayerSensitivity(graph, layer, op_types[layer], mse, psnr_from_mse(mse)))
    return results


def choose_float_layers(sensitivity: list[LayerSensitivity], target_psnr_db: float) -> list[LayerSensitivity]:
    """The costliest layers to keep in float so that the summed cost of the others is within the target.

    The summed per-layer MSE estimates the fully quantized model's MSE; the target is a PSNR of the
    INT8 frames against the float frames.
    """
    budget = 10.0 ** (-target_psnr_db / 10.0)
    ordered = sorted(sensitivity, key=lambda item: item.mse, reverse=True)
    remaining = sum(item.mse for item in ordered)
    chosen = []
    for item in ordered:
        if remaining <= budget:
            break
        chosen.append(item)
        remaining -= item.mse
    return chosen
