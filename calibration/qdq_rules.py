"""Static check that a Q/DQ ONNX model obeys TensorRT's explicit-quantization rules.

TensorRT 10 and 11 build a Q/DQ model as INT8 only when every QuantizeLinear/DequantizeLinear is symmetric int8
(zero point 0, dtype int8), scales are positive and finite, activations are quantized per tensor, weights per
output channel (axis 0 of a Conv weight, the N axis of a Gemm/MatMul weight), every Q feeds DQ nodes with the
same scale, and no ONNX Runtime contrib operator (com.microsoft domain) is left. ONNX Runtime would run many
models that break these rules, so this check is what `cpgait verify` relies on to say "this file will build as
INT8 on the Jetson too".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class QdqReport:
    """Result of the check: how many Q/DQ nodes were seen and every rule they break."""

    quantize_nodes: int
    dequantize_nodes: int
    violations: tuple[str, ...]

    @property
    def is_qdq(self) -> bool:
        return self.quantize_nodes + self.dequantize_nodes > 0

    @property
    def ok(self) -> bool:
        return self.is_qdq and not self.violations


def _weight_axis(consumer, input_index: int) -> int | None:
    """Output-channel axis of the weight that `consumer` reads at `input_index`, or None when it is no weight."""
    if consumer.op_type == "Conv" and input_index == 1:
        return 0
    if consumer.op_type == "ConvTranspose" and input_index == 1:
        return 1
    if consumer.op_type == "Gemm" and input_index == 1:
        trans_b = next((a.i for a in consumer.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if consumer.op_type == "MatMul" and input_index == 1:
        return -1
    return None


def check_qdq_model(model: object) -> QdqReport:
    """Check an `onnx.ModelProto` (or a path to one) against TensorRT's explicit-quantization rules."""
    import onnx
    from onnx import numpy_helper

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model))
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # scales and zero points may also come from Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: dict[str, list[tuple[object, int]]] = {}
    producers = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, k))
        for name in node.output:
            producers[name] = node

    problems: list[str] = []
    n_q = n_dq = 0
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            problems.append(
                f"{node.op_type} {node.name!r}: operator domain {node.domain!r}; TensorRT's ONNX parser "
                "reads the standard domain only (quantize without ONNX Runtime-specific fusions)"
            )
        if node.op_type not in QDQ_OPS:
            continue
        n_q += node.op_type == "QuantizeLinear"
        n_dq += node.op_type == "DequantizeLinear"
        where = f"{node.op_type} {node.name or node.output[0]!r}"
        scale = inits.get(node.input[1]) if len(node.input) > 1 else None
        zero = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None:
            problems.append(f"{where}: scale is not a constant")
            continue
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            problems.append(f"{where}: scales must be positive and finite (min {float(np.min(scale)):.3g})")
        if zero is None:
            problems.append(f"{where}: no zero point (ONNX then means uint8); expected an int8 zero point of 0")
        else:
            if zero.dtype != np.int8:
                problems.append(f"{where}: zero point dtype {zero.dtype}; expected int8")
            if np.any(zero != 0):
                problems.append(f"{where}: zero point {zero.ravel()[:4].tolist()}; expected 0 (symmetric)")
        per_channel = scale.size > 1
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if node.op_type == "DequantizeLinear":
            source = node.input[0]
            if source in inits:  # a weight quantized offline: must be per output channel of its consumer
                for consumer, k in consumers.get(node.output[0], []):
                    want = _weight_axis(consumer, k)
                    if want is None or not per_channel:
                        continue
                    rank = inits[source].ndim
                    if axis % rank != want % rank:
                        problems.append(
                            f"{where}: per-channel axis {axis}; the output channel of "
                            f"{consumer.op_type} {consumer.name!r} weight is axis {want % rank}"
                        )
            else:
                producer = producers.get(source)
                if producer is None or producer.op_type != "QuantizeLinear":
                    problems.append(f"{where}: input is not produced by a QuantizeLinear (Q/DQ must come in pairs)")
                elif (
                    len(producer.input) > 1
                    and producer.input[1] in inits
                    and not np.array_equal(inits[producer.input[1]], scale)
                ):
                    problems.append(f"{where}: scale differs from its QuantizeLinear {producer.name!r}")
        else:
            if per_channel:
                problems.append(f"{where}: activation quantized per channel; TensorRT expects per-tensor scales")
            users = consumers.get(node.output[0], [])
            if not users or any(u.op_type != "DequantizeLinear" for u, _ in users):
                problems.append(f"{where}: output must feed DequantizeLinear nodes only (Q/DQ pairs)")
    return QdqReport(n_q, n_dq, tuple(problems))
