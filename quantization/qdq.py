"""Edits of QDQ ONNX graphs (QuantizeLinear -> DequantizeLinear pairs around float ops).

ONNX Runtime runs a quantized layer with an INT8 kernel only when its pattern is complete: for a
convolution, DequantizeLinear on the input and the weight, and QuantizeLinear on the output
(after a Relu, which then folds into the output range) become one QLinearConv. NNCF quantizes
layer *inputs* (OpenVINO's convention), so a convolution whose output feeds a float op
(concat, upsample, sigmoid, softmax, ...) would stay a float Conv between fake quantizers, slower
than no quantization at all. `add_output_quantizers` completes those patterns with ranges
measured on the calibration feeds.

`dequantize_except` keeps one layer quantized and every other layer float (the per-layer
sensitivity pass); `int8_kernels` says which kernels ONNX Runtime actually chose.
`activations_to_uint8` turns NNCF's int8 activations into the uint8 ones ORT's x86 kernels take.
`byte_concats` runs the skip joins (nearest upsample, concatenate, quantize) on uint8 tensors.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import QuantizationError

QUANTIZABLE_OP_TYPES: tuple[str, ...] = ("Conv", "MatMul")  # the ops ORT has INT8 kernels for in these graphs
INT8_KERNELS = ("QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "MatMulInteger", "ConvInteger", "QGemm")
FLOAT_KERNELS = ("Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm")
REFERENCE_PREFIX = "float_reference::"

Feeds = dict[str, np.ndarray]


def _producers(graph) -> dict[str, object]:
    return {output: node for node in graph.node for output in node.output}


def _consumers(graph) -> dict[str, list]:
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def _is_dequantized(name: str, producers: dict) -> bool:
    producer = producers.get(name)
    return producer is not None and producer.op_type == "DequantizeLinear"


def quantized_layers(model) -> list[str]:
    """Names of the Conv / MatMul nodes whose inputs are all dequantized (NNCF quantized them), graph order."""
    producers = _producers(model.graph)
    return [node.name for node in model.graph.node if node.op_type in QUANTIZABLE_OP_TYPES
            and all(_is_dequantized(name, producers) for name in node.input[:2])]


def layer_names(model) -> list[str]:
    """Names of every Conv / MatMul node of a float graph, graph order (the candidates for quantization)."""
    names = [node.name for node in model.graph.node if node.op_type in QUANTIZABLE_OP_TYPES]
    if len(set(names)) != len(names) or not all(names):
        raise QuantizationError("the graph's Conv/MatMul nodes need unique names to be quantized layer by layer")
    return names


def _layer_output(node, consumers: dict) -> str:
    """The tensor an INT8 kernel of `node` would produce: its output, or its Relu's when a Relu alone follows."""
    following = consumers.get(node.output[0], [])
    if len(following) == 1 and following[0].op_type == "Relu":
        return following[0].output[0]
    return node.output[0]


def _needs_output_quantizer(tensor: str, consumers: dict, graph_outputs: set[str]) -> bool:
    following = consumers.get(tensor, [])
    return tensor not in graph_outputs and bool(following) and not all(
        node.op_type == "QuantizeLinear" for node in following)


def activations_to_uint8(model) -> None:
    """Re-express int8 activation Q/DQ pairs as uint8 (zero point + 128), in place; the values are identical.

    NNCF gives signed activations (a residual sum, a heatmap difference) int8 Q/DQ pairs, but
    ORT's x86 CPU provider fuses a QDQ convolution only with uint8 activations; int8 weights stay.
    """
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    quantizers = [node for node in graph.node if node.op_type == "QuantizeLinear" and len(node.input) > 2]
    zero_points = {node.input[2] for node in quantizers}
    for init in graph.initializer:
        if init.name in zero_points:
            value = numpy_helper.to_array(init)
            if value.dtype == np.int8:
                init.CopyFrom(numpy_helper.from_array((value.astype(np.int16) + 128).astype(np.uint8), init.name))
    shifted = {node.output[0] for node in quantizers}
    for info in graph.value_info:
        if info.name in shifted:
            info.type.tensor_type.elem_type = TensorProto.UINT8


def add_output_quantizers(model, feeds: list[Feeds]):
    """A copy of `model` with uint8 Q/DQ pairs after every quantized Conv whose output is not quantized yet.

    Ranges: min/max over `feeds` (0 always inside, so zero stays exact), measured on `model`
    itself so that they include the quantization error of the layers before.
    """
    import onnx
    from onnx import helper, numpy_helper

    completed = onnx.ModelProto()
    completed.CopyFrom(model)
    graph = completed.graph
    consumers = _consumers(graph)
    outputs = {output.name for output in graph.output}
    quantized = set(quantized_layers(completed))
    targets = [tensor for node in graph.node if node.name in quantized and node.op_type == "Conv"
               for tensor in [_layer_output(node, consumers)] if _needs_output_quantizer(tensor, consumers, outputs)]
    if not targets:
        return completed
    low, high = _ranges(model, targets, feeds)
    position = {output: index for index, node in enumerate(graph.node) for output in node.output}
    inserted = []
    for tensor in targets:
        scale = max(high[tensor] - low[tensor], 1e-8) / 255.0
        zero_point = int(np.clip(round(-low[tensor] / scale), 0, 255))
        scale_name, zero_name = f"{tensor}_output_scale", f"{tensor}_output_zero_point"
        graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), scale_name),
                                  numpy_helper.from_array(np.array(zero_point, np.uint8), zero_name)])
        quantized_name, dequantized_name = f"{tensor}_output_q", f"{tensor}_output_dq"
        for consumer in consumers[tensor]:
            for index, name in enumerate(consumer.input):
                if name == tensor:
                    consumer.input[index] = dequantized_name
        inserted.append((position[tensor], [
            helper.make_node("QuantizeLinear", [tensor, scale_name, zero_name], [quantized_name], name=f"{tensor}_OutputQ"),
            helper.make_node("DequantizeLinear", [quantized_name, scale_name, zero_name], [dequantized_name],
                             name=f"{tensor}_OutputDQ")]))
    # Insert from the back so earlier positions stay valid; each pair right after its producer.
    for index, nodes in sorted(inserted, key=lambda item: item[0], reverse=True):
        for node in reversed(nodes):
            graph.node.insert(index + 1, node)
    onnx.checker.check_model(completed)
    return completed


def byte_concats(model) -> int:
    """Run each quantized Concat, and the nearest-neighbour Resizes feeding it, on uint8 tensors; in place.

    The decoder's skip joins (upsample the coarser features, concatenate the warped ones, quantize
    for the next convolution) are float in NNCF's graph: a float Resize and Concat of the full
    tensor, then one QuantizeLinear over it. Quantizing each input with the Concat's own output
    scale instead gives the same uint8 tensor, since nearest resizing and concatenation only move
    values: the Resize and Concat then move a quarter of the bytes, and what is quantized is
    smaller (the coarse input before it is upsampled). Where an output quantizer feeds only the
    join and has the Concat's zero point, it is re-targeted to the Concat's scale (whose range
    contains the upsampled values), so the convolution before writes the uint8 tensor itself.
    Returns how many Concats were rewritten.
    """
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    rewrite = _JoinRewrite(_producers(graph), _consumers(graph),
                           {init.name: numpy_helper.to_array(init).tolist() for init in graph.initializer
                            if init.data_type == TensorProto.UINT8 and not init.dims})
    outputs = {output.name for output in graph.output}
    joins = []
    for concat in graph.node:
        following = rewrite.consumers.get(concat.output[0], [])
        if (concat.op_type == "Concat" and concat.output[0] not in outputs and len(following) == 1
                and following[0].op_type == "QuantizeLinear"):
            joins.append((concat, following[0]))
    for concat, output_quantizer in joins:
        scale, zero_point = output_quantizer.input[1], output_quantizer.input[2]
        for index, name in enumerate(list(concat.input)):
            resize = rewrite.producers.get(name)
            if (resize is not None and resize.op_type == "Resize" and len(rewrite.consumers[name]) == 1
                    and _attribute(resize, "mode") == "nearest"):
                resize.input[0] = rewrite.quantized(resize.input[0], scale, zero_point, before=resize)
                resize.output[0] = f"{name}_uint8"
                concat.input[index] = resize.output[0]
            else:
                concat.input[index] = rewrite.quantized(name, scale, zero_point, before=concat)
        concat.output[0] = output_quantizer.output[0]
        rewrite.dropped.append(output_quantizer)
    nodes = []
    for node in graph.node:
        nodes.extend(new for new, before in rewrite.added if before is node)
        if not any(node is gone for gone in rewrite.dropped):
            nodes.append(_copy(node))
    del graph.node[:]
    graph.node.extend(nodes)
    remove_dead_nodes(model)  # and the scales of the re-targeted quantizers
    return len(joins)


@dataclass
class _JoinRewrite:
    """What `byte_concats` reads (producers, consumers, scalar uint8 zero points) and the nodes it drops and adds."""
    producers: dict
    consumers: dict
    zero_points: dict[str, int]
    dropped: list = field(default_factory=list)
    added: list = field(default_factory=list)  # (new node, the node it goes before)

    def quantized(self, tensor: str, scale: str, zero_point: str, before) -> str:
        """`tensor` as uint8 at (scale, zero_point): its output quantizer re-targeted where allowed, else a new one."""
        from onnx import helper

        dequantize = self.producers.get(tensor)
        if dequantize is not None and dequantize.op_type == "DequantizeLinear" and len(self.consumers[tensor]) == 1:
            quantize = self.producers.get(dequantize.input[0])
            # Only with the same zero point: ORT folds a Relu into its quantizer only when the zero
            # point is the Relu's floor, and an unfolded Relu leaves the convolution before it float.
            if (quantize is not None and quantize.op_type == "QuantizeLinear" and len(quantize.input) > 2
                    and len(self.consumers[quantize.output[0]]) == 1
                    and quantize.input[2] in self.zero_points
                    and self.zero_points[quantize.input[2]] == self.zero_points.get(zero_point)):
                quantize.input[1], quantize.input[2] = scale, zero_point
                self.dropped.append(dequantize)
                return quantize.output[0]
        quantized = f"{tensor}_join_q{len(self.added)}"  # a tensor may feed several joins, or one twice
        self.added.append((helper.make_node("QuantizeLinear", [tensor, scale, zero_point], [quantized],
                                            name=f"{quantized}_QuantizeLinear"), before))
        return quantized


def _copy(node):
    from onnx import NodeProto

    copy = NodeProto()
    copy.CopyFrom(node)
    return copy


def _attribute(node, name: str):
    from onnx import helper

    value = next((helper.get_attribute_value(attr) for attr in node.attribute if attr.name == name), None)
    return value.decode() if isinstance(value, bytes) else value


def _ranges(model, tensors: list[str], feeds: list[Feeds]) -> tuple[dict[str, float], dict[str, float]]:
    import onnx
    from onnx import TensorProto, helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for tensor in tensors:
        probe.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
    session = ort_session(probe)
    low = dict.fromkeys(tensors, 0.0)
    high = dict.fromkeys(tensors, 0.0)
    for feed in feeds:
        for tensor, value in zip(tensors, session.run(tensors, feed)):
            low[tensor] = min(low[tensor], float(value.min()))
            high[tensor] = max(high[tensor], float(value.max()))
    return low, high


def dequantize_except(quantized, reference, keep: str):
    """`quantized` with every layer but `keep` back in float: the single-layer model of the sensitivity pass.

    Activation Q/DQ pairs are bypassed for every consumer except `keep` (and the pair on `keep`'s
    own output stays); int8 weights and bias-corrected biases of the other layers are replaced
    by the float ones of `reference` (the graph before quantization, same node names).
    """
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    graph = model.graph
    producers = _producers(graph)
    consumers = _consumers(graph)
    reference_nodes = {node.name: node for node in reference.graph.node}
    reference_initializers = {init.name: init for init in reference.graph.initializer}
    kept = next((node for node in graph.node if node.name == keep), None)
    if kept is None:
        raise QuantizationError(f"no layer named {keep!r} in the quantized graph")
    kept_output = _layer_output(kept, consumers)
    borrowed: set[str] = set()
    for node in graph.node:
        if node.name == keep:
            continue
        for index, name in enumerate(node.input):
            producer = producers.get(name)
            if producer is None or producer.op_type != "DequantizeLinear":
                continue
            source = producers.get(producer.input[0])
            if source is not None and source.op_type == "QuantizeLinear":
                if source.input[0] != kept_output:
                    node.input[index] = source.input[0]
            else:
                node.input[index] = _reference_input(node, index, reference_nodes, borrowed)
        if node.op_type == "Conv" and len(node.input) > 2:  # undo NNCF's bias correction too
            node.input[2] = _reference_input(node, 2, reference_nodes, borrowed)
    for name in sorted(borrowed):
        copy = graph.initializer.add()
        copy.CopyFrom(reference_initializers[name])
        copy.name = REFERENCE_PREFIX + name
    remove_dead_nodes(model)
    return model


def _reference_input(node, index: int, reference_nodes: dict, borrowed: set[str]) -> str:
    reference = reference_nodes.get(node.name)
    if reference is None or len(reference.input) <= index:
        raise QuantizationError(f"layer {node.name!r} has no float counterpart in the reference graph")
    borrowed.add(reference.input[index])
    return REFERENCE_PREFIX + reference.input[index]


def remove_dead_nodes(model) -> None:
    """Drop nodes and initializers that no graph output depends on (in place)."""
    graph = model.graph
    producers = _producers(graph)
    needed = {output.name for output in graph.output}
    stack = list(needed)
    live = set()
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in live:
            continue
        live.add(id(node))
        for name in node.input:
            if name and name not in needed:
                needed.add(name)
                stack.append(name)
    kept_nodes = [node for node in graph.node if id(node) in live]
    kept_initializers = [init for init in graph.initializer if init.name in needed]
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers)


def ort_session(model, threads: int = 1, optimized_path: Path | None = None):
    """An ONNX Runtime CPU session for a ModelProto or a file, `threads` intra-op threads, full optimisation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # the optimizer's notes on saving NCHWc graphs are not warnings for us
    # Idle workers must sleep: the report times many sessions round-robin, and spinning workers of
    # the session that just ran took the cores from the next one (2 threads: 46 vs 16 ms measured).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class KernelCount:
    """What ONNX Runtime runs after its graph optimisations: INT8 kernels and float Conv/MatMul kernels."""
    int8: dict[str, int]
    float: dict[str, int]

    @property
    def int8_total(self) -> int:
        return sum(self.int8.values())

    @property
    def float_total(self) -> int:
        return sum(self.float.values())


def int8_kernels(model) -> KernelCount:
    """Count the INT8 and float compute kernels ORT's CPU provider chose for `model` (ModelProto or path)."""
    import onnx

    with tempfile.TemporaryDirectory() as folder:
        optimized = Path(folder) / "optimized.onnx"
        ort_session(model, optimized_path=optimized)
        counts = Counter(node.op_type for node in onnx.load(str(optimized)).graph.node)
    return KernelCount({op: counts[op] for op in INT8_KERNELS if counts[op]},
                       {op: counts[op] for op in FLOAT_KERNELS if counts[op]})
