"""Legacy implicit INT8 for TensorRT 10 (JetPack 6): an entropy calibrator fed by the same windows as `calibrate`.

TensorRT 11 removed implicit quantization (`IInt8EntropyCalibrator2`, `BuilderFlag.INT8`); there INT8 comes from
the Q/DQ model only. The calibration cache file makes the (slow) calibration a one-off per model: when it exists
TensorRT reads the scales from it and asks for no windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.data.windows import WindowSet


def make_entropy_calibrator(windows: WindowSet | None, cache: str | Path, batch: int = 1) -> object:
    """An `IInt8EntropyCalibrator2` over `windows` in batches of `batch` (the profile's opt batch), with a cache.

    The class is defined here, not at module level, because its base class comes from tensorrt, which is imported
    only when a TensorRT 10 build asks for implicit INT8.
    """
    from cpgait.runtime.backends.cuda import DeviceBuffer, cuda_check, cuda_runtime
    from cpgait.runtime.backends.trt_engine import import_tensorrt

    trt = import_tensorrt()
    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise CpgaitError(
            f"TensorRT {trt.__version__} has no implicit INT8 calibrator; build the Q/DQ model from "
            "`cpgait calibrate` instead"
        )
    cache = Path(cache)
    if windows is None and not cache.is_file():
        raise CpgaitError(f"{cache}: no calibration cache yet; pass --data with sequence files to create it")
    if windows is not None and len(windows) < batch:
        raise CpgaitError(f"{len(windows)} calibration window(s); a batch of {batch} is needed at least")
    cudart = cuda_runtime()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._feeds = iter(windows.batches(batch)) if windows is not None else iter(())
            self._buffers: dict[str, DeviceBuffer] = {}

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            feed = next(self._feeds, None)
            if feed is None or len(next(iter(feed.values()))) != batch:
                return None  # no more full batches: calibration ends
            pointers = []
            for name in names:
                host = np.ascontiguousarray(feed[name], dtype=np.float32)
                buffer = self._buffers.setdefault(name, DeviceBuffer(cudart))
                ptr = buffer.reserve(host.nbytes)
                cuda_check(
                    cudart.cudaMemcpy(ptr, host.ctypes.data, host.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
                )
                pointers.append(ptr)
            return pointers

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: object) -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()
