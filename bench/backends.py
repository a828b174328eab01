"""The targets `cpgait-bench model` can time: a registry backend on one model artefact at one precision.

A target that cannot run is reported as skipped with its reason (the backend registry's: no GPU, no
onnxruntime-gpu, no TensorRT; or no such model file), never silently dropped. Each GPU target's speed-up is taken
against PyTorch eager on the same device ("torch-cuda"), each CPU target's against PyTorch eager on the CPU
("torch").
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.export.backends import BACKENDS
from cpgait.runtime.backends.runner import Runner

ARTEFACTS = ("checkpoint", "onnx", "int8", "fp16")


@dataclass(frozen=True)
class Target:
    """One timed configuration: a registry backend (`runtime`) on one artefact at one precision, and the PyTorch
    baseline it is compared with. Device and thread use come from the registry's backend."""

    name: str
    artefact: str
    baseline: str
    runtime: str  # a name in cpgait.export.backends.BACKENDS
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.artefact not in ARTEFACTS:
            raise ValueError(f"target {self.name}: artefact {self.artefact!r}; expected one of {ARTEFACTS}")
        BACKENDS.get(self.runtime)

    @property
    def device(self) -> str:
        return BACKENDS.get(self.runtime).device

    @property
    def threaded(self) -> bool:
        return BACKENDS.get(self.runtime).threaded


@dataclass(frozen=True)
class ModelFiles:
    """The artefacts of one model: checkpoint (PyTorch baseline), FP32 / INT8 / FP16 ONNX; None where absent."""

    checkpoint: Path | None = None
    onnx: Path | None = None
    int8: Path | None = None
    fp16: Path | None = None

    def get(self, artefact: str) -> Path | None:
        return getattr(self, artefact)

    def to_dict(self) -> dict[str, str | None]:
        return {a: (None if self.get(a) is None else str(self.get(a))) for a in ARTEFACTS}


REFERENCE = "reference"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CpgaitError(f"package {package} is not installed")
    return Path(spec.submodule_search_locations[0])


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".int8.onnx", ".fp16.onnx", ".onnx", ".pt", ".pth"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def find_model_files(
    model: str | None,
    checkpoint: Path | None = None,
    onnx: Path | None = None,
    int8: Path | None = None,
    fp16: Path | None = None,
) -> ModelFiles:
    """Resolve M and its siblings (`X.pt`, `X.onnx`, `X.int8.onnx`, `X.fp16.onnx` in M's folder).

    `reference` names the shipped reference model (export/assets/reference.pt, runtime/assets/reference*.onnx).
    Files named explicitly must exist; a sibling that is not there is simply absent (its backends are skipped).
    """
    explicit = {"checkpoint": checkpoint, "onnx": onnx, "int8": int8, "fp16": fp16}
    for flag, path in explicit.items():
        if path is not None and not Path(path).is_file():
            raise CpgaitError(f"--{'checkpoint' if flag == 'checkpoint' else flag} {path}: no such file")
    found: dict[str, Path | None] = dict.fromkeys(ARTEFACTS)
    if model == REFERENCE:
        runtime_assets = _package_dir("cpgait.runtime") / "assets"
        found.update(
            checkpoint=_package_dir("cpgait.export") / "assets" / "reference.pt",
            onnx=runtime_assets / "reference.onnx",
            int8=runtime_assets / "reference.int8.onnx",
            fp16=runtime_assets / "reference.fp16.onnx",
        )
        onnx_file, checkpoint_file = found["onnx"], found["checkpoint"]
        assert onnx_file is not None and checkpoint_file is not None  # set just above
        if not onnx_file.is_file() and not checkpoint_file.is_file():
            raise CpgaitError(
                f"the reference model is not built: neither {found['checkpoint']} nor {found['onnx']} "
                f"exists (`make model` makes them)"
            )
    elif model is not None:
        path = Path(model)
        if not path.is_file():
            raise CpgaitError(f"{path}: no such model file; expected a checkpoint (.pt) or an ONNX file (.onnx)")
        if path.suffix not in (".pt", ".pth", ".onnx"):
            raise CpgaitError(f"{path}: unknown model type {path.suffix!r}; expected .pt, .pth or .onnx")
        stem, folder = _stem(path), path.parent
        found.update(
            checkpoint=folder / f"{stem}.pt",
            onnx=folder / f"{stem}.onnx",
            int8=folder / f"{stem}.int8.onnx",
            fp16=folder / f"{stem}.fp16.onnx",
        )
        kind = (
            "int8"
            if path.name.endswith(".int8.onnx")
            else "fp16"
            if path.name.endswith(".fp16.onnx")
            else ("onnx" if path.suffix == ".onnx" else "checkpoint")
        )
        found[kind] = path
    elif not any(explicit.values()):
        raise CpgaitError("no model given: pass M (a .pt or .onnx file, or `reference`) or --checkpoint/--onnx/--int8")
    found = {k: (v if v is not None and v.is_file() else None) for k, v in found.items()}
    found.update({k: Path(v) for k, v in explicit.items() if v is not None})
    return ModelFiles(**found)


_ARTEFACT_HINTS = {
    "checkpoint": "checkpoint (X.pt; --checkpoint)",
    "onnx": "FP32 ONNX (X.onnx; --onnx)",
    "int8": "INT8 ONNX (X.int8.onnx; --int8, made by `cpgait calibrate`)",
    "fp16": "FP16 ONNX (X.fp16.onnx; --fp16)",
}


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("torch", "checkpoint", "torch", "torch"),
        Target("ort-cpu", "onnx", "torch", "ort-cpu"),
        Target("ort-int8", "int8", "torch", "ort-cpu", "int8"),
        Target("torch-cuda", "checkpoint", "torch-cuda", "torch-cuda"),
        Target("ort-cuda", "onnx", "torch-cuda", "ort-cuda"),
        Target("ort-cuda-fp16", "fp16", "torch-cuda", "ort-cuda", "fp16"),
        Target("trt-fp32", "onnx", "torch-cuda", "trt", "fp32"),
        Target("trt-fp16", "onnx", "torch-cuda", "trt", "fp16"),
        Target("trt-int8", "int8", "torch-cuda", "trt", "int8"),
    )
}


def parse_backends(text: str) -> list[Target]:
    """`ort-cpu,torch` -> targets, in the order given; unknown names are a user error naming the known ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CpgaitError("--backend is empty; expected a comma-separated list of: " + ", ".join(TARGETS))
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise CpgaitError(f"--backend {', '.join(unknown)}: unknown backend; expected any of {', '.join(TARGETS)}")
    return [TARGETS[n] for n in dict.fromkeys(names)]


def unavailable(target: Target, files: ModelFiles) -> str | None:
    """Every reason `target` cannot run here with these files (missing artefact, the backend's own), joined."""
    reasons = [] if files.get(target.artefact) is not None else [f"no {_ARTEFACT_HINTS[target.artefact]}"]
    reason = BACKENDS.unavailable_reason(target.runtime)
    if reason:
        reasons.append(reason)
    return "; ".join(reasons) if reasons else None


def make_backend_runner(
    backend: Target, files: ModelFiles, threads: int, batches: Sequence[int], engine_dir: Path
) -> Runner:
    """The runner for `backend` (not yet active), from the registry; TensorRT engines are built first
    (or reused from `engine_dir`) with a batch profile spanning `batches`."""
    path = files.get(backend.artefact)
    if path is None:
        raise CpgaitError(f"{backend.name}: no {_ARTEFACT_HINTS[backend.artefact]}")
    if backend.runtime == "trt":
        from cpgait.runtime.backends.trt_engine import Profile, build_engine

        profile = Profile(min(batches), min(batches), max(batches))
        path = build_engine(path, backend.precision, profile, engine_dir)
    options = {"threads": threads} if backend.threaded else {}
    return BACKENDS.make_runner(path, backend.runtime, **options)


def synchronizer(backend: Target, runner: Runner) -> Callable[[], None] | None:
    """What to call inside the timed region so a sample ends when the device has finished (None on the CPU)."""
    if backend.device == "cpu":
        return None
    if backend.runtime.startswith("torch"):
        import torch

        return torch.cuda.synchronize
    return None
