"""The CUDA runtime through cuda-python, for the TensorRT runner and calibrator, and whether a CUDA device is here.

cuda-python is imported inside functions only (the `tensorrt` extra); `cuda_unavailable` asks the driver directly
through ctypes, so it needs neither torch nor cuda-python.
"""

from __future__ import annotations

import ctypes

from cpgait.errors import CpgaitError


def cuda_runtime():
    """The cuda-python runtime module (new `cuda.bindings` layout first, the older `cuda.cudart` second)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise CpgaitError(
                "the TensorRT runner needs cuda-python (`pip install cuda-python`, or the `tensorrt` extra)"
            ) from None
    return cudart


def cuda_check(result):
    """Unpack a cuda-python `(error, *values)` tuple, raising on any CUDA error (a device fault, not user error)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else (tuple(values) or None)


class DeviceBuffer:
    """One device allocation that grows when a larger tensor arrives."""

    def __init__(self, cudart) -> None:
        self.cudart = cudart
        self.ptr = 0
        self.nbytes = 0

    def reserve(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(cuda_check(self.cudart.cudaMalloc(nbytes)))
            self.nbytes = nbytes
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            cuda_check(self.cudart.cudaFree(self.ptr))
        self.ptr, self.nbytes = 0, 0


def cuda_unavailable() -> str | None:
    """Why no CUDA device can be used here, or None when the driver reports at least one."""
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
