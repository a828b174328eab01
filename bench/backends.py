"""The backends `cpgait-bench model` can time, which model file each needs, and why one cannot run here.

A backend that cannot run is reported as skipped with its reason (no GPU, no onnxruntime-gpu, no TensorRT, no
such model file), never silently dropped. Each GPU backend's speed-up is taken against PyTorch eager on the same
device ("torch-cuda"), each CPU backend's against PyTorch eager on the CPU ("torch").
"""

from __future__ import annotations

import ctypes
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runners import Runner

ARTEFACTS = ("checkpoint", "onnx", "int8", "fp16")


@dataclass(frozen=True)
class Backend:
    """One way to run the model: the artefact it needs, the device, and the PyTorch baseline it is compared with."""

    name: str
    artefact: str
    device: str
    baseline: str
    runtime: str  # the backend name `make_runner` / `TorchRunner` understands
    precision: str = "fp32"
    requires: tuple[str, ...] = ()  # keys of _REQUIREMENTS, checked in order
    threaded: bool = False  # takes the benchmark's intra-op thread count

    def __post_init__(self) -> None:
        if self.artefact not in ARTEFACTS:
            raise ValueError(f"backend {self.name}: artefact {self.artefact!r}; expected one of {ARTEFACTS}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"backend {self.name}: device {self.device!r}; expected 'cpu' or 'cuda'")
        unknown = set(self.requires) - set(_REQUIREMENTS)
        if unknown:
            raise ValueError(f"backend {self.name}: unknown requirement(s) {sorted(unknown)}")


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
    return Path(importlib.util.find_spec(package).submodule_search_locations[0])


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
        if not found["onnx"].is_file() and not found["checkpoint"].is_file():
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


def cuda_unavailable() -> str | None:
    """Why no CUDA device can be used here, or None when the driver reports at least one (no torch needed)."""
    for lib_name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(lib_name)
            break
        except OSError:
            continue
    else:
        return "no CUDA GPU (no NVIDIA driver: libcuda not found)"
    if lib.cuInit(0) != 0:
        return "no CUDA GPU (the NVIDIA driver found no usable device)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "no CUDA GPU (the NVIDIA driver reports 0 devices)"
    return None


def _ort_cuda_unavailable() -> str | None:
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return (
            f"onnxruntime-gpu is not installed (onnxruntime {ort.__version__} offers "
            f"{', '.join(p.replace('ExecutionProvider', '') for p in providers)})"
        )
    return None


def _module_missing(module: str, why: str) -> Callable[[], str | None]:
    return lambda: None if importlib.util.find_spec(module) is not None else f"{module} is not installed ({why})"


def _torch_cuda_unavailable() -> str | None:
    import torch

    return None if torch.cuda.is_available() else f"torch {torch.__version__} has no CUDA device or build"


_REQUIREMENTS: dict[str, Callable[[], str | None]] = {
    "cuda": cuda_unavailable,
    "torch": _module_missing("torch", "the PyTorch baseline needs the export extra"),
    "torch-cuda": _torch_cuda_unavailable,
    "ort-cuda": _ort_cuda_unavailable,
    "tensorrt": _module_missing("tensorrt", "TensorRT comes with JetPack, or from NVIDIA's pip index"),
}
_ARTEFACT_HINTS = {
    "checkpoint": "checkpoint (X.pt; --checkpoint)",
    "onnx": "FP32 ONNX (X.onnx; --onnx)",
    "int8": "INT8 ONNX (X.int8.onnx; --int8, made by `cpgait calibrate`)",
    "fp16": "FP16 ONNX (X.fp16.onnx; --fp16)",
}


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("torch", "checkpoint", "cpu", "torch", "torch", requires=("torch",), threaded=True),
        Backend("ort-cpu", "onnx", "cpu", "torch", "ort-cpu", threaded=True),
        Backend("ort-int8", "int8", "cpu", "torch", "ort-cpu", "int8", threaded=True),
        Backend(
            "torch-cuda", "checkpoint", "cuda", "torch-cuda", "torch-cuda", requires=("cuda", "torch", "torch-cuda")
        ),
        Backend("ort-cuda", "onnx", "cuda", "torch-cuda", "ort-cuda", requires=("cuda", "ort-cuda")),
        Backend("ort-cuda-fp16", "fp16", "cuda", "torch-cuda", "ort-cuda", "fp16", requires=("cuda", "ort-cuda")),
        Backend("trt-fp32", "onnx", "cuda", "torch-cuda", "trt", "fp32", requires=("cuda", "tensorrt")),
        Backend("trt-fp16", "onnx", "cuda", "torch-cuda", "trt", "fp16", requires=("cuda", "tensorrt")),
        Backend("trt-int8", "int8", "cuda", "torch-cuda", "trt", "int8", requires=("cuda", "tensorrt")),
    )
}


def parse_backends(text: str) -> list[Backend]:
    """`ort-cpu,torch` -> backends, in the order given; unknown names are a user error naming the known ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CpgaitError("--backend is empty; expected a comma-separated list of: " + ", ".join(BACKENDS))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise CpgaitError(f"--backend {', '.join(unknown)}: unknown backend; expected any of {', '.join(BACKENDS)}")
    return [BACKENDS[n] for n in dict.fromkeys(names)]


def unavailable(backend: Backend, files: ModelFiles) -> str | None:
    """Every reason `backend` cannot run here with these files, joined; None when it can."""
    reasons = [] if files.get(backend.artefact) is not None else [f"no {_ARTEFACT_HINTS[backend.artefact]}"]
    for need in backend.requires:
        reason = _REQUIREMENTS[need]()
        if reason:
            reasons.append(reason)
            if need == "torch":  # the torch-cuda check needs torch itself
                break
    return "; ".join(reasons) if reasons else None


def make_backend_runner(
    backend: Backend, files: ModelFiles, threads: int, batches: Sequence[int], engine_dir: Path
) -> Runner:
    """The runner for `backend` (not yet active), through `make_runner`; TensorRT engines are built first
    (or reused from `engine_dir`) with a batch profile spanning `batches`."""
    from cpgait.runtime.backends.runners import make_runner

    path = files.get(backend.artefact)
    if backend.runtime == "trt":
        from cpgait.runtime.backends.trt_engine import Profile, build_engine

        profile = Profile(min(batches), min(batches), max(batches))
        path = build_engine(path, backend.precision, profile, engine_dir)
    options = {"threads": threads} if backend.threaded else {}
    return make_runner(path, backend.runtime, **options)


def synchronizer(backend: Backend, runner: Runner) -> Callable[[], None] | None:
    """What to call inside the timed region so a sample ends when the device has finished (None on the CPU)."""
    if backend.device == "cpu":
        return None
    if backend.runtime.startswith("torch"):
        import torch

        return torch.cuda.synchronize
    return None
