"""ONNX Runtime runners: the CPU (the embedded default) and CUDA with IO binding and optional CUDA graphs."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract
from cpgait.runtime.core.tensors import TensorSpec

if TYPE_CHECKING:
    import onnxruntime as ort


_ORT_DTYPES: dict[str, np.dtype] = {
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
        spinning: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.providers = list(providers)
        self.threads = threads
        # False: intra-op threads sleep between calls instead of spin-waiting, which would take cores from the
        # other stages of the live loop (see cpgait.runtime.live.thread_budget)
        self.spinning = spinning
        self.session: ort.InferenceSession | None = None

    def _activate(self) -> None:
        import onnxruntime as ort

        if not isinstance(self.model, bytes) and not Path(self.model).is_file():
            raise CpgaitError(f"{self.model}: no such ONNX model file")
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            session = ort.InferenceSession(model, sess_options=options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable or invalid files
            raise CpgaitError(
                f"{self.model if not isinstance(self.model, bytes) else 'model'}: ONNX Runtime "
                f"could not load it ({exc})"
            ) from None
        self.session = session
        self._specs = []
        for i in session.get_inputs():
            dtype = _ORT_DTYPES.get(i.type)
            if dtype is None:
                raise CpgaitError(f"input {i.name!r} has type {i.type}, which cpgait does not feed")
            self._specs.append(TensorSpec(i.name, dtype, tuple(d if isinstance(d, int) else None for d in i.shape)))
        self._outputs = [o.name for o in session.get_outputs()]
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        where = "model" if isinstance(self.model, bytes) else str(self.model)
        self.contract = None if text is None else ModelContract.from_json(text, where)

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert self.session is not None  # set by _activate
        return dict(zip(self._outputs, self.session.run(self._outputs, dict(feed))))

    def _deactivate(self) -> None:
        self.session = None


class OrtCudaRunner(OnnxRuntimeRunner):
    """ONNX Runtime with the CUDA execution provider (needs onnxruntime-gpu), IO binding and optional CUDA graphs.

    Inputs are copied into device OrtValues that stay bound between calls and outputs stay on the device until
    read, so a call costs one copy each way. With `cuda_graph=True` ONNX Runtime captures the whole graph on the
    first call and replays it (batch-1 inference of a small net is launch-bound: see GPU.md); a captured graph
    has fixed shapes, so the batch size of the first call is the only one that runner accepts. The bound buffers
    are shared state (and a CUDA graph must not be replayed from two threads at once), so calls are serialised by
    a lock. Output buffers take each output's element type from the model.
    """

    name = "ort-cuda"

    def __init__(
        self, model: str | Path | bytes, device_id: int = 0, cuda_graph: bool = False, threads: int | None = None
    ) -> None:
        options = {"device_id": str(device_id), "enable_cuda_graph": "1" if cuda_graph else "0"}
        super().__init__(model, providers=[("CUDAExecutionProvider", options), "CPUExecutionProvider"], threads=threads)
        self.device_id = device_id
        self.cuda_graph = cuda_graph
        self._lock = threading.Lock()

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
        assert self.session is not None  # set by the base class
        if "CUDAExecutionProvider" not in self.session.get_providers():
            raise CpgaitError(f"backend {self.name}: ONNX Runtime could not start CUDA (no GPU or driver?)")
        self._binding: ort.IOBinding | None = self.session.io_binding()
        self._device_inputs: dict[str, ort.OrtValue] = {}
        self._device_outputs: dict[str, ort.OrtValue] = {}

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            return self._infer_bound(feed)

    def _infer_bound(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import onnxruntime as ort

        assert self.session is not None and self._binding is not None  # set by _activate
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
                dtype = _ORT_DTYPES.get(out.type)
                if dtype is None:
                    raise CpgaitError(f"output {out.name!r} has type {out.type}, which cpgait does not read")
                shape = [batch if not isinstance(d, int) else d for d in out.shape]
                value = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype.type, "cuda", self.device_id)
                self._device_outputs[out.name] = value
                self._binding.bind_ortvalue_output(out.name, value)
        self.session.run_with_iobinding(self._binding)
        return {name: value.numpy() for name, value in self._device_outputs.items()}

    def _deactivate(self) -> None:
        self._device_inputs, self._device_outputs, self._binding = {}, {}, None
        super()._deactivate()
