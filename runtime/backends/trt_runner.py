"""TensorRT runner: deserialises a checked engine and runs it with the TensorRT 10/11 named-tensor API.

Buffers and the CUDA stream come from `cuda-python` (NVIDIA's thin binding of the CUDA runtime): the kiosk has no
torch (and must not load it for a 4-class classifier), onnxruntime-gpu is optional on a Jetson, and cuda-python is
what TensorRT's own samples use, so the TensorRT path depends on nothing but `tensorrt` + `cuda-python` (the
`tensorrt` extra). Both are imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.cuda import DeviceBuffer, cuda_check, cuda_runtime
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

    def _activate(self) -> None:
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
                f"{self.engine_path}: TensorRT could not deserialise it (corrupt or from another "
                "TensorRT build); rebuild it with `cpgait build`"
            )
        self._context = self._engine.create_execution_context()
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
        self._buffers = {name: DeviceBuffer(self._cudart) for name in [s.name for s in self._specs] + self._outputs}

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, ctx, stream = self._cudart, self._context, self._stream
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for spec in self._specs:
            host = np.ascontiguousarray(feed[spec.name])
            if not ctx.set_input_shape(spec.name, host.shape):
                raise CpgaitError(
                    f"input {spec.name!r}: shape {host.shape} is outside the engine's optimisation "
                    "profile; rebuild with a wider `cpgait build --batch min,opt,max`"
                )
            ptr = self._buffers[spec.name].reserve(host.nbytes)
            cuda_check(cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, h2d, stream))
            ctx.set_tensor_address(spec.name, ptr)
        results = {}
        for name in self._outputs:
            out = np.empty(tuple(ctx.get_tensor_shape(name)), dtype=self._output_dtypes[name])
            ctx.set_tensor_address(name, self._buffers[name].reserve(out.nbytes))
            results[name] = out
        if not ctx.execute_async_v3(int(stream)):
            raise RuntimeError(f"{self.engine_path}: TensorRT execution failed")
        for name, out in results.items():
            cuda_check(cudart.cudaMemcpyAsync(out.ctypes.data, self._buffers[name].ptr, out.nbytes, d2h, stream))
        cuda_check(cudart.cudaStreamSynchronize(stream))
        return results

    def _deactivate(self) -> None:
        for buf in self._buffers.values():
            buf.free()
        cuda_check(self._cudart.cudaStreamDestroy(self._stream))
        self._context = self._engine = self._runtime = None
