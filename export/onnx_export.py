"""Checkpoint -> ONNX: opset 17, dynamic batch only, checked, simplified, with the model contract in its metadata.

Exporter: the TorchScript-based `torch.onnx.export(..., dynamo=False)`. In torch 2.13 the default dynamo exporter
needs `onnxscript` and emits opset 18, reaching 17 only through a down-conversion pass; the TorchScript exporter
writes opset 17 directly, and onnxslim then folds its shape arithmetic, giving a plain Conv/MatMul/Gemm/Softmax/
LayerNormalization graph that ONNX Runtime quantizes and TensorRT parses.

Every export is followed by a parity check against PyTorch (max |delta logits| <= 1e-4 and identical top-1) on
real windows from a data set, or on random windows of the right shapes when no data set is given (the report
says which). The file is written under a temporary name and moved into place only once all checks pass.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError, atomic_output, require_writable
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract
from cpgait.runtime.data.windows import WindowSet, load_windows, synthetic_windows

if TYPE_CHECKING:
    import onnx
    from torch import nn

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4
FP16_TOLERANCE = 5e-2
PARITY_WINDOWS = 64


@dataclass(frozen=True)
class ParityReport:
    """How closely an ONNX file reproduces the PyTorch logits on a set of windows."""

    windows: int
    origin: str
    max_abs_diff: float
    top1_agreement: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.top1_agreement == 1.0

    def summary(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return (
            f"parity {verdict}: max |delta logits| {self.max_abs_diff:.2e} (limit {self.tolerance:.0e}), "
            f"top-1 agreement {self.top1_agreement:.2%} on {self.origin}"
        )


def _example_inputs(contract: ModelContract, batch: int = 2) -> dict:
    import torch

    return {name: torch.from_numpy(a) for name, a in synthetic_windows(contract, batch).inputs.items()}


def export_model(
    model: nn.Module,
    contract: ModelContract,
    out: str | Path,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    overwrite: bool = False,
) -> onnx.ModelProto:
    """Export an eval-mode torch model to an ONNX `ModelProto` (written to `out` by the caller after parity)."""
    import onnx
    import torch

    if opset < 17:
        raise CpgaitError(f"--opset {opset}; cpgait exports opset 17 or newer (LayerNormalization needs 17)")
    target = require_writable(out, overwrite)
    tmp = target.with_name(target.name + ".export.onnx")
    model = model.eval()
    names = list(contract.input_names)
    try:
        with warnings.catch_warnings():  # the TorchScript exporter announces its own deprecation; chosen on purpose
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (),
                str(tmp),
                kwargs=_example_inputs(contract),
                input_names=names,
                output_names=[contract.output_name],
                opset_version=opset,
                dynamic_axes={n: {0: "batch"} for n in names + [contract.output_name]},
                do_constant_folding=True,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
    if simplify:
        import onnxslim

        proto = onnxslim.slim(proto)
    proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    _require_batch_only_dynamic(proto, names)
    set_contract(proto, contract)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _require_batch_only_dynamic(proto: onnx.ModelProto, names: list[str]) -> None:
    got = [i.name for i in proto.graph.input]
    if got != names:
        raise CpgaitError(f"exported inputs are {got}; the contract expects {names} (an unused input was dropped?)")
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims or not dims[0].dim_param or any(not d.dim_value for d in dims[1:]):
            shape = [d.dim_param or d.dim_value for d in dims]
            raise CpgaitError(f"tensor {value.name!r} has shape {shape}; expected only the batch axis dynamic")


def set_contract(proto: onnx.ModelProto, contract: ModelContract) -> None:
    """Write the contract JSON into the model's metadata_props (replacing an older one)."""
    for prop in [p for p in proto.metadata_props if p.key == METADATA_KEY]:
        proto.metadata_props.remove(prop)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract.to_json()


def contract_of(proto: onnx.ModelProto) -> ModelContract:
    """The contract `set_contract` wrote into the model's metadata."""
    text = next((p.value for p in proto.metadata_props if p.key == METADATA_KEY), None)
    if text is None:
        raise CpgaitError(f"ONNX model has no cpgait contract (metadata key {METADATA_KEY!r})")
    return ModelContract.from_json(text)


def save_model(proto: onnx.ModelProto, out: str | Path) -> Path:
    """Write via a temporary name so a failed write never leaves a half file at `out`."""
    import onnx

    out = Path(out)
    with atomic_output(out, overwrite=True) as tmp:  # callers check `overwrite` before any work
        onnx.save(proto, str(tmp))
    return out


def parity(
    model: nn.Module,
    onnx_model: onnx.ModelProto,
    windows: WindowSet,
    tolerance: float = PARITY_TOLERANCE,
    batch: int = 16,
) -> ParityReport:
    """Compare PyTorch and ONNX Runtime (CPU) logits (the contract's output) on the same windows."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    output = contract_of(onnx_model).output_name
    ref, got = [], []
    with torch.inference_mode():
        for feed in windows.batches(batch):
            ref.append(model(**{k: torch.from_numpy(v) for k, v in feed.items()}).numpy())
            got.append(session.run([output], feed)[0].astype(np.float32))
    ref_all, got_all = np.concatenate(ref), np.concatenate(got)
    return ParityReport(
        windows=len(windows),
        origin=windows.origin,
        max_abs_diff=float(np.max(np.abs(ref_all - got_all))),
        top1_agreement=float(np.mean(ref_all.argmax(1) == got_all.argmax(1))),
        tolerance=tolerance,
    )


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """FP16 variant for ONNX Runtime CUDA / TensorRT 11 (weights and compute in float16, inputs and logits FP32)."""
    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings():  # the converter warns about values it clamps to the float16 range
        warnings.simplefilter("ignore")
        half = float16.convert_float_to_float16(proto, keep_io_types=True)
    onnx.checker.check_model(half, full_check=True)
    return half


def fp16_path(out: str | Path) -> Path:
    """model.onnx -> model.fp16.onnx (next to it)."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".onnx") + ".fp16.onnx")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    parity: ParityReport
    fp16_path: Path | None = None
    fp16_parity: ParityReport | None = None


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    data: str | Path | None = None,
    fp16: bool = False,
    overwrite: bool = False,
    windows: int = PARITY_WINDOWS,
) -> ExportResult:
    """`cpgait export`: load, export, check parity; write the file(s) only when parity passes (else raise)."""
    from cpgait.export.checkpoint import load_checkpoint

    if Path(out).suffix != ".onnx":
        raise CpgaitError(f"{out}: the output must end in .onnx")
    half_out = require_writable(fp16_path(out), overwrite) if fp16 else None
    ckpt = load_checkpoint(checkpoint)
    model, contract = ckpt.model("cpu"), ckpt.contract
    proto = export_model(model, contract, out, opset=opset, simplify=simplify, overwrite=overwrite)
    sample = load_windows(data, contract, count=windows) if data else synthetic_windows(contract, windows)
    report = parity(model, proto, sample)
    if not report.ok:
        raise CpgaitError(
            f"{checkpoint}: ONNX export does not reproduce PyTorch; {report.summary()}; {out} was not written"
        )
    path = save_model(proto, out)
    if half_out is None:
        return ExportResult(path, report)
    half = to_fp16(proto)
    half_report = parity(model, half, sample, tolerance=FP16_TOLERANCE)
    if not half_report.ok:
        raise CpgaitError(
            f"{checkpoint}: the FP16 variant does not reproduce PyTorch; {half_report.summary()}; "
            f"{half_out} was not written ({path} was)"
        )
    return ExportResult(path, report, save_model(half, half_out), half_report)
