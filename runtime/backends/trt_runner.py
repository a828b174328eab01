"""TensorRT runner: deserialises a checked engine and runs it with the TensorRT 10/11 named-tensor API.

Buffers (device memory, and pinned host memory so the copies are truly asynchronous) and the CUDA stream come from
`cuda-python` (NVIDIA's thin binding of the CUDA runtime): the kiosk has no torch (and must not load it for a
4-class classifier), onnxruntime-gpu is optional on a Jetson, and cuda-python is what TensorRT's own samples use, so
the TensorRT path depends on nothing but `tensorrt` + `cuda-python` (README, "TensorRT on a Jetson"). Both are
imported inside functions only. A failed activation frees whatever it had allocated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.cuda import DeviceBuffer, PinnedBuffer, cuda_check, cuda_runtime, stream_handle
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.tensors import TensorSpec

if TYPE_CHECKING:
    from cpgait.runtime.backends.trt_engine import Profile


class TensorRTRunner(Runner):
    """A TensorRT engine built by `cpgait build` (the side-car is checked against this device first).

    Given an ONNX file instead, the engine for `precision` and `profile` is taken from `cache_dir` (default:
    `engines/` next to the model) or built there on first activation, as a kiosk does on its first start.
    """

    name = "trt"

    def __init__(
        self,
        model: str | Path,
        precision: str | None = None,
        profile: Profile | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.model = Path(model)
        self.precision = precision
        self.profile = profile
        self.cache_dir = cache_dir
        self.engine_path: Path | None = None
        # TensorRT and cuda-python objects: those libraries ship no type information here
        self._cudart: Any = None
        self._stream: Any = None
        self._buffers: dict[str, DeviceBuffer] = {}
        self._host: dict[str, PinnedBuffer] = {}
        self._context: Any = None
        self._engine: Any = None
        self._runtime: Any = None
        self._output_dtypes: dict[str, np.dtype] = {}

    def _activate(self) -> None:
        try:
            self._load()
        except BaseException:
            self._release()  # nothing allocated before the failure is left behind
            raise

    def _load(self) -> None:
        from cpgait.runtime.backends.model_file import precision_of
        from cpgait.runtime.backends.trt_engine import (
            Profile,
            build_engine,
            import_tensorrt,
            load_engine,
            read_sidecar,
        )

        if self.model.suffix == ".onnx":  # the file decides the precision unless one is asked for
            precision = self.precision or precision_of(self.model)
            self.engine_path = build_engine(
                self.model,
                precision,
                self.profile or Profile(1, 1, 8),
                self.cache_dir or self.model.parent / "engines",
                require_contract=False,
            )
        else:
            self.engine_path = self.model
            built = read_sidecar(self.model)[0].precision if self.model.is_file() else None
            if self.precision and built and built != self.precision:
                raise CpgaitError(f"{self.model}: a {built} engine, not {self.precision}")
        data, contract = load_engine(self.engine_path)
        self.contract = None if contract is None else ModelContract.from_dict(contract, str(self.engine_path))
        trt = import_tensorrt()
        self._cudart = cuda_runtime()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise CpgaitError(
                f"{self.engine_path}: TensorRT could not deserialise it (from another TensorRT build?); "
                "rebuild it with `cpgait build`"
            )
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise CpgaitError(
                f"{self.engine_path}: TensorRT could not create an execution context (out of device memory?)"
            )
        self._stream = cuda_check(self._cudart.cudaStreamCreate())
        self._specs, self._outputs, self._output_dtypes = [], [], {}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                shape = tuple(None if d < 0 else int(d) for d in self._engine.get_tensor_shape(name))
                self._specs.append(TensorSpec(name, dtype, shape))
            else:
                self._outputs.append(name)
                self._output_dtypes[name] = dtype
        names = [s.name for s in self._specs] + self._outputs
        self._buffers = {name: DeviceBuffer(self._cudart) for name in names}
        self._host = {name: PinnedBuffer(self._cudart) for name in names}

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, ctx, stream = self._cudart, self._context, self._stream
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for spec in self._specs:
            value = feed[spec.name]
            if not ctx.set_input_shape(spec.name, value.shape):
                raise CpgaitError(
                    f"input {spec.name!r}: shape {value.shape} is outside the engine's optimisation "
                    "profile; rebuild with a wider `cpgait build --batch min,opt,max`"
                )
            host = self._host[spec.name].view(value.shape, spec.dtype)
            host[...] = value  # staged in pinned memory: the copy below is truly asynchronous
            ptr = self._buffers[spec.name].reserve(host.nbytes)
            cuda_check(cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, h2d, stream))
            ctx.set_tensor_address(spec.name, ptr)
        staged = {}
        for name in self._outputs:
            out = self._host[name].view(tuple(ctx.get_tensor_shape(name)), self._output_dtypes[name])
            ctx.set_tensor_address(name, self._buffers[name].reserve(out.nbytes))
            staged[name] = out
        if not ctx.execute_async_v3(stream_handle(stream)):
            raise RuntimeError(f"{self.engine_path}: TensorRT execution failed")
        for name, out in staged.items():
            cuda_check(cudart.cudaMemcpyAsync(out.ctypes.data, self._buffers[name].ptr, out.nbytes, d2h, stream))
        cuda_check(cudart.cudaStreamSynchronize(stream))
        return {name: out.copy() for name, out in staged.items()}  # the pinned buffers are reused by the next call

    def _deactivate(self) -> None:
        self._release()

    def _release(self) -> None:
        """Free every buffer and the stream, then drop TensorRT's objects (context before engine before runtime);
        safe after a partial activation, and every step runs even when one fails."""
        failures = []
        buffers: list[DeviceBuffer | PinnedBuffer] = [*self._buffers.values(), *self._host.values()]
        for buf in buffers:
            try:
                buf.free()
            except RuntimeError as exc:
                failures.append(exc)
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                cuda_check(self._cudart.cudaStreamDestroy(stream))
            except RuntimeError as exc:
                failures.append(exc)
        self._buffers, self._host = {}, {}
        self._context = self._engine = self._runtime = None
        if failures:
            raise failures[0]
