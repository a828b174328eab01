"""The one table of inference backends: name -> runner, the model files each runs, and why one cannot run here.

`cpgait run`, `cpgait build`, `cpgait verify` and `cpgait-bench` all take backend names from a `Registry`. The
runtime's own backends (ONNX Runtime CPU/CUDA, TensorRT) are `RUNTIME_BACKENDS`; the workstation adds the PyTorch
baseline from the torch side (`cpgait.export.backends`), so the kiosk never imports torch. A backend's
requirements are checked only when asked (`unavailable`), and its runner class is built only when asked
(`make_runner`), so listing backends costs nothing.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.cuda import cuda_unavailable
from cpgait.runtime.backends.model_file import model_format
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner, OrtCudaRunner
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.backends.triton_runner import TritonRunner
from cpgait.runtime.backends.trt_runner import TensorRTRunner

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Backend:
    """One way to run a model file: its runner class with fixed options, device, the file formats it runs, and
    checks that each return why it cannot run here (or None)."""

    name: str
    runner: Callable[..., Runner]
    device: str
    formats: tuple[str, ...]
    summary: str
    options: Mapping[str, object] = field(default_factory=dict)
    requires: tuple[Callable[[], str | None], ...] = ()
    threaded: bool = False  # takes an intra-op thread count (`threads=`)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"backend {self.name}: device {self.device!r}; expected one of {DEVICES}")
        unknown = set(self.formats) - {"onnx", "engine", "checkpoint"}
        if not self.formats or unknown:
            raise ValueError(f"backend {self.name}: formats {self.formats}; expected onnx, engine or checkpoint")

    def unavailable(self) -> str | None:
        """The first reason this backend cannot run here, or None when it can (checks run in order; a later
        check may rely on the earlier ones, e.g. the torch CUDA check needs torch)."""
        for check in self.requires:
            reason = check()
            if reason:
                return reason
        return None


class Registry:
    """Backends by name, in a fixed order; `extended` adds more (the workstation adds PyTorch)."""

    def __init__(self, backends: Iterable[Backend]) -> None:
        self._backends = {b.name: b for b in backends}

    def extended(self, backends: Iterable[Backend]) -> Registry:
        return Registry([*self._backends.values(), *backends])

    def names(self) -> list[str]:
        return list(self._backends)

    def __contains__(self, name: object) -> bool:
        return name in self._backends

    def get(self, name: str) -> Backend:
        if name not in self._backends:
            raise CpgaitError(f"backend {name!r}; expected one of {', '.join(self._backends)}")
        return self._backends[name]

    def unavailable_reason(self, name: str) -> str | None:
        """Why backend `name` cannot run here, or None when it can."""
        return self.get(name).unavailable()

    def describe(self) -> str:
        """One line per backend, for help texts."""
        return "; ".join(f"{b.name} ({b.summary})" for b in self._backends.values())

    def default_for(self, path: str | Path) -> str:
        """The first backend that runs this kind of file (ONNX -> ort-cpu, engine -> trt, checkpoint -> torch)."""
        fmt = model_format(path)
        for backend in self._backends.values():
            if fmt in backend.formats:
                return backend.name
        raise CpgaitError(f"{path}: no backend here runs {fmt} files; expected one of {', '.join(self._backends)}")

    def make_runner(self, path: str | Path, name: str = "ort-cpu", **options: object) -> Runner:
        """A runner (not yet active) for `path` on backend `name`; `options` go to the runner (e.g. threads=2)."""
        backend = self.get(name)
        fmt = model_format(path)
        if fmt not in backend.formats:
            raise CpgaitError(f"{path}: backend {name} runs {' or '.join(backend.formats)} files, not {fmt} files")
        accepted = list(inspect.signature(backend.runner).parameters)[1:]  # after the model
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise CpgaitError(
                f"backend {name!r} takes no option(s) {', '.join(unknown)}; it takes: {', '.join(accepted) or 'none'}"
            )
        return backend.runner(path, **{**backend.options, **options})


def _ort_cuda_unavailable() -> str | None:
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return (
            f"onnxruntime-gpu is not installed (onnxruntime {ort.__version__} offers "
            f"{', '.join(p.replace('ExecutionProvider', '') for p in providers)})"
        )
    return None


def module_missing(module: str, why: str) -> Callable[[], str | None]:
    """A requirement check: None when `module` can be imported, else the reason."""
    return lambda: None if importlib.util.find_spec(module) is not None else f"{module} is not installed ({why})"


_TENSORRT = module_missing("tensorrt", "TensorRT comes with JetPack, or from NVIDIA's pip index")

RUNTIME_BACKENDS = Registry(
    [
        Backend("ort-cpu", OnnxRuntimeRunner, "cpu", ("onnx",), "ONNX Runtime on the CPU", threaded=True),
        Backend(
            "ort-cuda",
            OrtCudaRunner,
            "cuda",
            ("onnx",),
            "ONNX Runtime CUDA with IO binding",
            requires=(cuda_unavailable, _ort_cuda_unavailable),
        ),
        Backend(
            "ort-cuda-graph",
            OrtCudaRunner,
            "cuda",
            ("onnx",),
            "ONNX Runtime CUDA, IO binding and a captured CUDA graph",
            options={"cuda_graph": True},
            requires=(cuda_unavailable, _ort_cuda_unavailable),
        ),
        Backend(
            "trt",
            TensorRTRunner,
            "cuda",
            ("engine", "onnx"),
            "TensorRT engine, or an ONNX built into one on first use",
            requires=(cuda_unavailable, _TENSORRT),
        ),
        Backend(
            "triton",
            TritonRunner,
            "cpu",  # this machine's side: the server decides where the model runs
            ("onnx",),
            "the classifier on a Triton server (--triton-url), the ONNX file naming it and its contract",
            requires=(module_missing("tritonclient", "pip install 'cpgait[serve]'"),),
        ),
    ]
)
