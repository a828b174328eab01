"""Post-training INT8 quantization to a Q/DQ ONNX that ONNX Runtime runs with INT8 kernels and TensorRT builds as INT8.

Recipe (ONNX Runtime `quantize_static` after its shape-inference pre-processing): QDQ format, int8 activations and
weights, symmetric (zero point 0), per-channel weights on the output-channel axis, biases left in float (TensorRT
builds int8 Q/DQ only; an int32 bias DQ is not in its explicit-quantization rules). Only the compute-heavy ops are
quantized (Conv, MatMul, Gemm), so Softmax, LayerNormalization, BatchNormalization and the pooling always run in
float.

Two Q/DQ placements (`--recipe`), because the two runtimes fuse Q/DQ differently:
- `ort` (default; the kiosk runs the INT8 ONNX on ONNX Runtime CPU): inputs *and outputs* of Conv/MatMul/Gemm are
  quantized, the form ONNX Runtime fuses into QLinearConv/QLinearMatMul (without the output Q it runs the
  convolution in float between DQ nodes);
- `tensorrt` (for `cpgait build` on a Jetson), after TensorRT's "Q/DQ Layer-Placement Recommendations": the
  *inputs* of weighted ops are quantized, their *outputs* are not (a Q/DQ after a Conv is requantized again before
  the next Conv: Conv -> Q -> DQ -> Relu -> Q -> DQ; TensorRT fuses the activation and the next op's input
  quantization into the convolution by itself); in a residual join `Add(Conv(x), skip)` the skip input is quantized
  and the Conv output is not, so TensorRT can fuse the addition into the INT8 convolution; when both inputs are
  convolutions (a downsampling shortcut), the shortcut's output is quantized and the main branch is fused.
Either file builds on TensorRT; its float regions run in FP16 on TensorRT 10 (a weakly typed INT8 + FP16 build,
see `cpgait.runtime.backends.trt_engine`). The measured accuracy and ONNX Runtime speed of both are in the README
("INT8"). Three further groups can be kept in float:

| category    | nodes                                                                                      |
|-------------|--------------------------------------------------------------------------------------------|
| `attention` | MatMuls of two activations (query x key, softmax x value): their ranges move with the data |
| `head`      | the Gemm/MatMul nodes of the classifier head (after the last Concat/ReduceMean)            |
| `graph`     | the ST-GCN's joint aggregation (activation x constant [V, V] adjacency): cheap (V = 17)     |
| `gait`      | the gait-feature stream before it meets the skeleton stream (weighted ops that read only   |
|             | the feature inputs): one int8 scale per tensor cannot span 255 features of different units |
|             | and their 0/1 masks; five small layers                                                      |

What stays in float by default (`DEFAULT_KEEP_FLOAT`) and the default range method were decided by measuring top-1
agreement on the reference model (README, "INT8"); every choice is recorded in the output's metadata.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.data.windows import WindowSet

if TYPE_CHECKING:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

    from cpgait.calibration.gate import GateReport, Thresholds

METHODS = ("minmax", "entropy", "percentile")
RECIPES = ("ort", "tensorrt")
KEEP_FLOAT_CATEGORIES = ("attention", "head", "graph", "gait")
DEFAULT_KEEP_FLOAT = ("attention", "head", "graph", "gait")
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
QUANT_METADATA_KEY = "cpgait.quantization"


class WindowReader:
    """ONNX Runtime `CalibrationDataReader` over a window set: `get_next()` yields feeds, then None.

    Batches all have one size (the largest divisor of the window count up to `max_batch`): the histogram
    calibrators (entropy, percentile) stack every batch's activations and fail on a shorter last batch.
    """

    def __init__(self, windows: WindowSet, max_batch: int = 32) -> None:
        self.windows = windows
        self.batch = max(d for d in range(1, max_batch + 1) if len(windows) % d == 0)
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self.windows.batches(self.batch))


def float_nodes(model: onnx.ModelProto, keep_float: tuple[str, ...]) -> list[str]:
    """Names of the nodes kept in float for the chosen categories (see the module docstring)."""
    unknown = sorted(set(keep_float) - set(KEEP_FLOAT_CATEGORIES))
    if unknown:
        raise CpgaitError(f"keep-float {', '.join(unknown)}; expected some of {', '.join(KEEP_FLOAT_CATEGORIES)}")
    nodes = list(model.graph.node)
    constants = {i.name for i in model.graph.initializer}
    constants |= {n.output[0] for n in nodes if n.op_type == "Constant"}
    keep: list[str] = []
    if "attention" in keep_float:
        keep.extend(n.name for n in nodes if n.op_type == "MatMul" and not constants.intersection(n.input))
    if "head" in keep_float:
        last_pool = max((i for i, n in enumerate(nodes) if n.op_type in ("Concat", "ReduceMean")), default=-1)
        keep.extend(n.name for n in nodes[last_pool + 1 :] if n.op_type in ("Gemm", "MatMul"))
    if "graph" in keep_float:
        keep.extend(_adjacency_matmuls(model, nodes))
    if "gait" in keep_float:
        keep.extend(_feature_stream_nodes(model, nodes))
    return sorted(set(keep))


def _feature_stream_nodes(model: onnx.ModelProto, nodes: list) -> list[str]:
    """Weighted nodes (Conv, MatMul, Gemm) that depend on graph inputs other than `skeleton` and not on it: the
    gait-feature stream up to where it meets the skeleton stream."""
    inputs = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    depends: dict[str, frozenset[str]] = {name: frozenset([name]) for name in inputs}
    keep = []
    for n in nodes:  # ONNX graphs are topologically sorted
        mine = frozenset().union(*(depends.get(i, frozenset()) for i in n.input))
        for out in n.output:
            depends[out] = mine
        if n.op_type in QUANTIZED_OPS and mine and "skeleton" not in mine:
            keep.append(n.name)
    return keep


def _adjacency_matmuls(model: onnx.ModelProto, nodes: list) -> list[str]:
    """MatMuls of an activation with a constant `[V, V]` matrix, V = the joints of the `skeleton` input."""
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    if "skeleton" not in shapes:
        return []
    joints = shapes["skeleton"][-1]
    square = {i.name for i in model.graph.initializer if list(i.dims) == [joints, joints]}
    return [n.name for n in nodes if n.op_type == "MatMul" and square.intersection(n.input)]


def residual_adds(model: onnx.ModelProto) -> list[str]:
    """Names of the residual joins: Adds of two activations, at least one of them a Conv's output."""
    nodes = list(model.graph.node)
    constants = {i.name for i in model.graph.initializer} | {n.output[0] for n in nodes if n.op_type == "Constant"}
    producer = {out: n for n in nodes for out in n.output}
    return [
        n.name
        for n in nodes
        if n.op_type == "Add"
        and len(n.input) == 2
        and not constants.intersection(n.input)
        and any(producer.get(i) is not None and producer[i].op_type == "Conv" for i in n.input)
    ]


def fuse_residual_conv_outputs(model: onnx.ModelProto, adds: list[str]) -> int:
    """In each residual Add, take one Conv-output input back out of its Q/DQ pair (TensorRT fuses that Conv with
    the Add); Q/DQ nodes and scales left without consumers are removed. Returns how many inputs were unquantized."""
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output}
    changed = 0
    for add in (n for n in nodes if n.name in adds):
        for k, name in enumerate(add.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            source = producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
            if q is not None and source is not None and source.op_type == "Conv":
                add.input[k] = q.input[0]
                changed += 1
                break
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    while True:  # drop the orphaned DQ, then its orphaned Q
        dead = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        dead = [n for n in dead if not any(o in used for o in n.output)]
        if not dead:
            for init in [i for i in model.graph.initializer if i.name not in used]:
                model.graph.initializer.remove(init)
            return changed
        for n in dead:
            model.graph.node.remove(n)
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}


@dataclass(frozen=True)
class QuantizeSettings:
    method: str = "percentile"
    keep_float: tuple[str, ...] = DEFAULT_KEEP_FLOAT
    per_channel: bool = True
    recipe: str = "ort"  # Q/DQ placement: see the module docstring

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise CpgaitError(f"--method {self.method!r}; expected one of {', '.join(METHODS)}")
        if self.recipe not in RECIPES:
            raise CpgaitError(f"--recipe {self.recipe!r}; expected one of {', '.join(RECIPES)}")


def quantize_qdq(
    pre: Path,
    out: Path,
    reader: CalibrationDataReader,
    settings: QuantizeSettings,
    op_types: list[str],
    exclude: list[str],
    unquantized_outputs: list[str],
) -> None:
    """ONNX Runtime's `quantize_static` of the pre-processed model `pre` into `out` with cpgait's TensorRT-compatible
    settings: Q/DQ, symmetric int8 activations and weights (zero point 0), no bias Q/DQ, symmetric calibration
    ranges; `reader` is a `CalibrationDataReader`, and the outputs of `unquantized_outputs` op types stay float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[settings.method]
    quantize_static(
        str(pre),
        str(out),
        reader,
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=settings.per_channel,
        calibrate_method=method,
        op_types_to_quantize=op_types,
        nodes_to_exclude=exclude,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "CalibTensorRangeSymmetric": True,
            "OpTypesToExcludeOutputQuantization": unquantized_outputs,
        },
    )


def quantize(
    model_path: str | Path, windows: WindowSet, settings: QuantizeSettings = QuantizeSettings()
) -> onnx.ModelProto:
    """Quantize the FP32 ONNX at `model_path` on `windows`; returns the Q/DQ `ModelProto` (not yet written)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cpgait.calibration.qdq_rules import check_qdq_model

    source = onnx.load(str(model_path))
    if any(n.op_type == "QuantizeLinear" for n in source.graph.node):
        raise CpgaitError(f"{model_path}: already quantized; calibrate the FP32 model")
    with tempfile.TemporaryDirectory(prefix="cpgait-quant-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(model_path), str(pre), skip_symbolic_shape=True)
        prepared = onnx.load(str(pre))
        excluded = float_nodes(prepared, settings.keep_float)
        residual = residual_adds(prepared) if settings.recipe == "tensorrt" else []
        op_types = [*QUANTIZED_OPS, "Add"] if residual else list(QUANTIZED_OPS)
        other_adds = [n.name for n in prepared.graph.node if n.op_type == "Add" and n.name not in residual]
        quantize_qdq(
            pre,
            out,
            WindowReader(windows),
            settings,
            op_types,
            excluded + (other_adds if residual else []),
            unquantized_outputs=op_types if settings.recipe == "tensorrt" else [],
        )
        qdq = onnx.load(str(out))
    fuse_residual_conv_outputs(qdq, residual)
    for prop in source.metadata_props:  # the contract travels with the quantized file
        if prop.key not in {p.key for p in qdq.metadata_props}:
            entry = qdq.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value
    entry = qdq.metadata_props.add()
    entry.key = QUANT_METADATA_KEY
    entry.value = json.dumps(
        {
            "method": settings.method,
            "windows": len(windows),
            "origin": windows.origin,
            "keep_float": list(settings.keep_float),
            "float_nodes": excluded,
            "per_channel": settings.per_channel,
            "recipe": settings.recipe,
            "residual_adds": residual,
        }
    )
    report = check_qdq_model(qdq)
    if not report.is_qdq:
        raise CpgaitError(f"{model_path}: nothing was quantized (every Conv/MatMul/Gemm kept in float?)")
    if not report.ok:
        raise CpgaitError("the quantized model breaks TensorRT's Q/DQ rules: " + "; ".join(report.violations[:5]))
    return qdq


DEFAULT_WINDOWS = 500
MIN_WINDOWS = 100


@dataclass(frozen=True)
class CalibrationResult:
    """What `calibrate` did: the output (None when the gate failed), the gate report and the calibration set."""

    path: Path | None
    gate: GateReport
    calibration_origin: str
    float_nodes: tuple[str, ...]


def calibrate(
    model_path: str | Path,
    data: str | Path,
    out: str | Path,
    settings: QuantizeSettings = QuantizeSettings(),
    windows: int = DEFAULT_WINDOWS,
    minimum: int = MIN_WINDOWS,
    thresholds: Thresholds | None = None,
    overwrite: bool = False,
) -> CalibrationResult:
    """`cpgait calibrate`: quantize on stratified windows from `data`, gate INT8 against FP32 on all of `data`'s
    windows, and move the INT8 file into place only when the gate passes (a failing model is never written, so
    nothing downstream can pick it up)."""
    import onnx

    from cpgait.calibration.gate import Thresholds, compare, logits
    from cpgait.errors import atomic_output, require_writable
    from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
    from cpgait.runtime.core.contract import ModelContract
    from cpgait.runtime.data.windows import load_windows

    if minimum < 1 or windows < minimum:
        raise CpgaitError(f"--windows {windows} and minimum {minimum}: expected 1 <= minimum <= windows")
    out = Path(out)
    if not out.name.endswith(".onnx"):
        raise CpgaitError(f"{out}: the output must end in .onnx")
    require_writable(out, overwrite)
    contract = ModelContract.from_onnx(model_path)
    calib = load_windows(data, contract, count=windows, minimum=minimum)
    qdq = quantize(model_path, calib, settings)
    held = load_windows(data, contract)
    report = compare(
        str(model_path),
        str(out),
        logits(OnnxRuntimeRunner(model_path), held),
        logits(OnnxRuntimeRunner(qdq.SerializeToString()), held),
        held,
        contract.class_names,
        thresholds or Thresholds(),
    )
    written = None
    if report.ok:
        with atomic_output(out, overwrite=True) as tmp:  # `overwrite` was checked before any work
            onnx.save(qdq, str(tmp))
        written = out
    meta = json.loads(next(p.value for p in qdq.metadata_props if p.key == QUANT_METADATA_KEY))
    return CalibrationResult(written, report, calib.origin, tuple(meta["float_nodes"]))
