"""Static check that a Q/DQ ONNX model obeys TensorRT's explicit-quantization rules.

TensorRT 10 and 11 build a Q/DQ model as INT8 only when every QuantizeLinear/DequantizeLinear is symmetric int8
(zero point 0, dtype int8), scales are positive and finite, activations are quantized per tensor, weights per
output channel (axis 0 of a Conv weight, the N axis of a Gemm/MatMul weight) with one scale per channel, every Q
feeds DQ nodes with the same scale, and no ONNX Runtime contrib operator (com.microsoft domain) is left.

A weight comes in either form TensorRT accepts: an int8 initializer -> DQ (what ONNX Runtime writes) or a float
initializer -> Q -> DQ (what NVIDIA's ModelOpt and pytorch-quantization export; TensorRT quantizes it at build
time). A DequantizeLinear may omit its zero point (ONNX then takes 0 of its input's type, int8 here); a
QuantizeLinear may not (its output would be uint8). ONNX Runtime would run many
models that break these rules, so this check is what `cpgait verify` relies on to say "this file will build as
INT8 on the Jetson too".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

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


def _dequantizes_a_weight_q(node, producers: dict, inits: dict) -> bool:
    """Whether DQ `node` reads a Q of a constant (a float weight quantized at build time; the Q is checked)."""
    producer = producers.get(node.input[0])
    return producer is not None and producer.op_type == "QuantizeLinear" and producer.input[0] in inits


def check_qdq_model(model: str | Path | onnx.ModelProto) -> QdqReport:
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
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    producers = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, k))
        for name in node.output:
            producers[name] = node

    def weight_users(node) -> list[tuple[onnx.NodeProto, int]]:
        """The ops that read the weight this Q or DQ node quantizes (through the DQ after a Q)."""
        users = consumers.get(node.output[0], [])
        if node.op_type == "QuantizeLinear":
            users = [u for dq, _ in users if dq.op_type == "DequantizeLinear" for u in consumers.get(dq.output[0], [])]
        return users

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
        is_q = node.op_type == "QuantizeLinear"
        n_q += is_q
        n_dq += not is_q
        where = f"{node.op_type} {node.name or node.output[0]!r}"
        scale = inits.get(node.input[1]) if len(node.input) > 1 else None
        zero = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        source = node.input[0]
        weight = inits.get(source)  # a constant input: this node quantizes a weight
        if scale is None:
            problems.append(f"{where}: scale is not a constant")
            continue
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            problems.append(f"{where}: scales must be positive and finite (min {float(np.min(scale)):.3g})")
        if zero is None:
            if is_q:
                problems.append(f"{where}: no zero point (ONNX then means uint8); expected an int8 zero point of 0")
        else:
            if zero.dtype != np.int8:
                problems.append(f"{where}: zero point dtype {zero.dtype}; expected int8")
            if np.any(zero != 0):
                problems.append(f"{where}: zero point {zero.ravel()[:4].tolist()}; expected 0 (symmetric)")
            if zero.shape != scale.shape:
                problems.append(f"{where}: zero point shape {zero.shape} differs from the scale's {scale.shape}")
        if not is_q and weight is not None and weight.dtype != np.int8:
            problems.append(f"{where}: dequantizes a {weight.dtype} constant; expected int8 weights")
        per_channel = scale.size > 1
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if weight is not None:  # a weight: per output channel of its consumer, one scale per channel
            if per_channel:
                rank = weight.ndim
                if not -rank <= axis < rank:
                    problems.append(f"{where}: per-channel axis {axis} outside the weight's rank {rank}")
                    continue
                if scale.size != weight.shape[axis]:
                    problems.append(
                        f"{where}: {scale.size} per-channel scales for axis {axis % rank} of size {weight.shape[axis]}"
                    )
                for consumer, k in weight_users(node):
                    want = _weight_axis(consumer, k)
                    if want is not None and axis % rank != want % rank:
                        problems.append(
                            f"{where}: per-channel axis {axis % rank}; the output channel of "
                            f"{consumer.op_type} {consumer.name!r} weight is axis {want % rank}"
                        )
        elif per_channel and not _dequantizes_a_weight_q(node, producers, inits):
            problems.append(f"{where}: activation quantized per channel; TensorRT expects per-tensor scales")
        if is_q:
            users = consumers.get(node.output[0], [])
            if not users or any(u.op_type != "DequantizeLinear" for u, _ in users):
                problems.append(f"{where}: output must feed DequantizeLinear nodes only (Q/DQ pairs)")
        elif weight is None:
            producer = producers.get(source)
            if producer is None or producer.op_type != "QuantizeLinear":
                problems.append(f"{where}: input is not produced by a QuantizeLinear (Q/DQ must come in pairs)")
            elif (
                len(producer.input) > 1
                and producer.input[1] in inits
                and not np.array_equal(inits[producer.input[1]], scale)
            ):
                problems.append(f"{where}: scale differs from its QuantizeLinear {producer.name!r}")
    return QdqReport(n_q, n_dq, tuple(problems))
