"""The CUDA runtime through cuda-python, for the TensorRT runner and calibrator, and whether a CUDA device is here.

cuda-python is imported inside functions only (the `tensorrt` and `jetson*` extras); `cuda_unavailable` and
`driver_cuda_version` ask the driver directly through ctypes, so they need neither torch nor cuda-python. That is
also how a cuda-python built for a newer CUDA major version than the driver's is named plainly (`cuda_mismatch`):
cuda-bindings 13 on a JetPack 6 driver (CUDA 12.x) fails its first call with "insufficient driver", which would
otherwise surface as "no usable CUDA device".
"""

from __future__ import annotations

import ctypes
from importlib import metadata
from typing import Any

import numpy as np

from cpgait.errors import CpgaitError

# What to install per driver CUDA major version (the pins of the `jetson6`/`tensorrt-cu12` and
# `jetson7`/`tensorrt-cu13` extras in pyproject.toml; tests/runtime/backends/test_dependency_pins.py checks both agree).
CUDA_PYTHON_PINS = {12: "cuda-python>=12.2,<13", 13: "cuda-python>=13.0,<14"}


def cuda_runtime():
    """The cuda-python runtime module (new `cuda.bindings` layout first, the older `cuda.cudart` second)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise CpgaitError(
                "the TensorRT runner needs cuda-python: on a Jetson `pip install '.[jetson6]'` (JetPack 6) or "
                "'.[jetson7]' (JetPack 7); see the README's Jetson section"
            ) from None
    return cudart


def cuda_check(result):
    """Unpack a cuda-python `(error, *values)` tuple, raising on any CUDA error (a device fault, not user error)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else (tuple(values) or None)


def stream_handle(stream: Any) -> int:
    """The `cudaStream_t` address TensorRT's `execute_async_v3` takes.

    cuda-bindings 13 deprecates `int(stream)` in favour of `cuda.bindings.utils.get_cuda_native_handle` (added in
    12.9.1 / 13.0); older cuda-python has only `int()`.
    """
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(stream)
    return int(get_cuda_native_handle(stream))


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
            ptr, self.ptr, self.nbytes = self.ptr, 0, 0  # forgotten first: a failing free is never retried
            cuda_check(self.cudart.cudaFree(ptr))


class PinnedBuffer:
    """Page-locked host memory that grows like `DeviceBuffer`: asynchronous copies from pageable memory are
    staged synchronously by the driver, so `cudaMemcpyAsync` only overlaps from pinned memory."""

    def __init__(self, cudart) -> None:
        self.cudart = cudart
        self.ptr = 0
        self.nbytes = 0

    def view(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A numpy array of `shape` and `dtype` over this buffer (grown first when too small)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(cuda_check(self.cudart.cudaMallocHost(nbytes)))
            self.nbytes = nbytes
        if nbytes == 0:
            return np.empty(shape, dtype)
        raw = (ctypes.c_byte * nbytes).from_address(self.ptr)
        return np.frombuffer(memoryview(raw), dtype=dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr, self.nbytes = self.ptr, 0, 0
            cuda_check(self.cudart.cudaFreeHost(ptr))


def _libcuda() -> ctypes.CDLL | None:
    for lib_name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(lib_name)
        except OSError:
            continue
    return None


def driver_cuda_version() -> tuple[int, int] | None:
    """The newest CUDA version the installed NVIDIA driver supports, e.g. (12, 6) on JetPack 6.2; None without one."""
    lib = _libcuda()
    if lib is None:
        return None
    version = ctypes.c_int(0)
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0 or version.value <= 0:
        return None
    return version.value // 1000, (version.value % 1000) // 10


def cuda_python_version() -> str | None:
    """The installed cuda-bindings (or, before 12.8, cuda-python) version; None when neither is installed."""
    for dist in ("cuda-bindings", "cuda-python"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def cuda_mismatch(driver: tuple[int, int] | None = None, bindings: str | None = None) -> str | None:
    """Why cuda-python cannot talk to this driver (a newer CUDA major version than the driver's), or None.

    Defaults read the driver (ctypes) and the installed package; tests pass both."""
    driver = driver if driver is not None else driver_cuda_version()
    bindings = bindings if bindings is not None else cuda_python_version()
    if driver is None or bindings is None:
        return None
    head = bindings.split(".")[0]
    if not head.isdigit() or int(head) <= driver[0]:
        return None
    pin = CUDA_PYTHON_PINS.get(driver[0], f"cuda-python>={driver[0]},<{driver[0] + 1}")
    return (
        f"cuda-python {bindings} is built for CUDA {head}, but this NVIDIA driver supports CUDA "
        f"{driver[0]}.{driver[1]} at most (JetPack 6 ships CUDA 12 drivers): install `pip install '{pin}'` "
        "(the `jetson6` extra), or upgrade the driver"
    )


def cuda_unavailable() -> str | None:
    """Why no CUDA device can be used here, or None when the driver reports at least one."""
    lib = _libcuda()
    if lib is None:
        return "no CUDA GPU (no NVIDIA driver: libcuda not found)"
    if lib.cuInit(0) != 0:
        return "no CUDA GPU (the NVIDIA driver found no usable device)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "no CUDA GPU (the NVIDIA driver reports 0 devices)"
    return None
