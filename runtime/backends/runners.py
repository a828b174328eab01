"""One small inference interface for every backend (modelled on Polygraphy's runners).

A runner is built cheaply, does its expensive set-up in `activate()`, runs `infer(feed) -> outputs` with numpy
arrays keyed by tensor name, and frees its resources in `deactivate()`; it is also a context manager. Inputs are
checked where they enter, so a wrong name, dtype or shape fails with a message that says what was expected.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError

if TYPE_CHECKING:
    from cpgait.runtime.core.contract import ModelContract


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of one model input; `None` in the shape marks a dynamic dimension."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    def check(self, value: np.ndarray) -> None:
        if not isinstance(value, np.ndarray):
            raise CpgaitError(f"input {self.name!r}: got {type(value).__name__}; expected a numpy array")
        if value.dtype != self.dtype:
            raise CpgaitError(f"input {self.name!r}: dtype {value.dtype}; expected {self.dtype}")
        if value.ndim != len(self.shape) or any(
            want is not None and got != want for got, want in zip(value.shape, self.shape)
        ):
            want = tuple("N" if d is None else d for d in self.shape)
            raise CpgaitError(f"input {self.name!r}: shape {tuple(value.shape)}; expected {want}")


def contract_input_specs(contract: ModelContract) -> list[TensorSpec]:
    """The float32 inputs a model with this contract takes, batch dimension dynamic (skeleton is COCO-17)."""
    window = contract.window
    shapes = {
        "skeleton": (None, 3, window, 17),
        "gait_series": (None, len(contract.series_features), window),
        "gait_scalars": (None, len(contract.scalar_features)),
    }
    return [TensorSpec(name, np.dtype(np.float32), shapes[name]) for name in contract.input_names]


def check_feed(feed: Mapping[str, np.ndarray], specs: Sequence[TensorSpec]) -> None:
    """Check that `feed` holds exactly the inputs in `specs`, each of the right dtype and shape."""
    want = {s.name for s in specs}
    if set(feed) != want:
        raise CpgaitError(f"inputs {sorted(feed)}; expected {sorted(want)}")
    for spec in specs:
        spec.check(feed[spec.name])


class Runner(abc.ABC):
    """Base of every backend: lazy activation, checked inputs, context-manager use."""

    name: str = "runner"

    def __init__(self) -> None:
        self.is_active = False

    def activate(self) -> Runner:
        if not self.is_active:
            self._activate()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference; activates on first use."""
        self.activate()
        check_feed(feed, self.input_specs())
        return self._infer(feed)

    @abc.abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """The inputs this model takes (available once active)."""

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def _deactivate(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Free resources; most backends need nothing beyond dropping references."""


_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(uint8)": np.dtype(np.uint8),
}


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime on the CPU (the embedded default) or any other execution provider list."""

    name = "ort-cpu"

    def __init__(
        self,
        model: str | Path | bytes,
        providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.providers = list(providers)
        self.threads = threads
        self.session = None

    def _activate(self) -> None:
        import onnxruntime as ort

        if not isinstance(self.model, bytes) and not Path(self.model).is_file():
            raise CpgaitError(f"{self.model}: no such ONNX model file")
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        model = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable or invalid files
            raise CpgaitError(
                f"{self.model if not isinstance(self.model, bytes) else 'model'}: ONNX Runtime "
                f"could not load it ({exc})"
            ) from None
        self._specs = []
        for i in self.session.get_inputs():
            dtype = _ORT_DTYPES.get(i.type)
            if dtype is None:
                raise CpgaitError(f"input {i.name!r} has type {i.type}, which cpgait does not feed")
            self._specs.append(TensorSpec(i.name, dtype, tuple(d if isinstance(d, int) else None for d in i.shape)))
        self._outputs = [o.name for o in self.session.get_outputs()]

    def input_specs(self) -> list[TensorSpec]:
        self.activate()
        return self._specs

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self.session.run(self._outputs, dict(feed))))

    def _deactivate(self) -> None:
        self.session = None


class OrtCudaRunner(OnnxRuntimeRunner):
    """ONNX Runtime with the CUDA execution provider (needs onnxruntime-gpu), IO binding and optional CUDA graphs.

    Inputs are copied into device OrtValues that stay bound between calls and outputs stay on the device until
    read, so a call costs one copy each way. With `cuda_graph=True` ONNX Runtime captures the whole graph on the
    first call and replays it (batch-1 inference of a small net is launch-bound: see GPU.md); a captured graph
    has fixed shapes, so the batch size of the first call is the only one that runner accepts.
    """

    name = "ort-cuda"

    def __init__(
        self, model: str | Path | bytes, device_id: int = 0, cuda_graph: bool = False, threads: int | None = None
    ) -> None:
        options = {"device_id": str(device_id), "enable_cuda_graph": "1" if cuda_graph else "0"}
        super().__init__(model, providers=[("CUDAExecutionProvider", options), "CPUExecutionProvider"], threads=threads)
        self.device_id = device_id
        self.cuda_graph = cuda_graph

    def _activate(self) -> None:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise CpgaitError(
                f"backend {self.name}: this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider; install "
                "onnxruntime-gpu (the `gpu` extra) in place of onnxruntime, on a machine with CUDA"
            )
        if hasattr(ort, "preload_dlls"):  # onnxruntime-gpu >= 1.21 finds the CUDA/cuDNN libraries of pip wheels
            ort.preload_dlls()
        super()._activate()
        if "CUDAExecutionProvider" not in self.session.get_providers():
            raise CpgaitError(f"backend {self.name}: ONNX Runtime could not start CUDA (no GPU or driver?)")
        self._binding = self.session.io_binding()
        self._device_inputs: dict[str, object] = {}
        self._device_outputs: dict[str, object] = {}

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import onnxruntime as ort

        for name, value in feed.items():
            held = self._device_inputs.get(name)
            if held is not None and tuple(held.shape()) == value.shape:
                held.update_inplace(np.ascontiguousarray(value))  # same device address: what a CUDA graph needs
                continue
            if held is not None and self.cuda_graph:
                raise CpgaitError(
                    f"input {name!r}: shape {value.shape}, but the CUDA graph was captured for "
                    f"{tuple(held.shape())}; use one runner per batch size with cuda_graph"
                )
            held = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), "cuda", self.device_id)
            self._device_inputs[name] = held
            self._binding.bind_ortvalue_input(name, held)
            self._device_outputs.clear()
        if not self._device_outputs:
            batch = next(iter(feed.values())).shape[0]
            for out in self.session.get_outputs():
                shape = [batch if not isinstance(d, int) else d for d in out.shape]
                value = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", self.device_id)
                self._device_outputs[out.name] = value
                self._binding.bind_ortvalue_output(out.name, value)
        self.session.run_with_iobinding(self._binding)
        return {name: value.numpy() for name, value in self._device_outputs.items()}

    def _deactivate(self) -> None:
        self._device_inputs, self._device_outputs, self._binding = {}, {}, None
        super()._deactivate()


# Backend name -> (implementation "module:Class", keyword arguments). The implementation is imported only when that
# backend is asked for, so the kiosk never imports torch or tensorrt for a backend it does not use.
BACKENDS: dict[str, tuple[str, dict]] = {
    "ort-cpu": ("cpgait.runtime.backends.runners:OnnxRuntimeRunner", {}),
    "ort-cuda": ("cpgait.runtime.backends.runners:OrtCudaRunner", {}),
    "ort-cuda-graph": ("cpgait.runtime.backends.runners:OrtCudaRunner", {"cuda_graph": True}),
    "trt": ("cpgait.runtime.backends.trt_runner:TensorRTRunner", {}),
    "torch": ("cpgait.export.torch_runner:TorchRunner", {}),
    "torch-cuda": ("cpgait.export.torch_runner:TorchRunner", {"device": "cuda"}),
}


def make_runner(model_path: str | Path, backend: str = "ort-cpu", **options: object) -> Runner:
    """A runner for `model_path` on `backend` (see `BACKENDS`); `options` go to the runner (e.g. threads=2).

    The file decides the precision: model.onnx (FP32), model.fp16.onnx, model.int8.onnx (Q/DQ) for ONNX Runtime;
    a .plan engine for `trt`; a .pt checkpoint for `torch`.
    """
    import importlib
    import inspect

    if backend not in BACKENDS:
        raise CpgaitError(f"backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    target, defaults = BACKENDS[backend]
    module, cls = target.split(":")
    try:
        runner_cls = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise CpgaitError(f"backend {backend!r} is not available here ({exc})") from None
    accepted = list(inspect.signature(runner_cls.__init__).parameters)[2:]  # after self and the model
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise CpgaitError(
            f"backend {backend!r} takes no option(s) {', '.join(unknown)}; it takes: {', '.join(accepted) or 'none'}"
        )
    return runner_cls(model_path, **{**defaults, **options})
