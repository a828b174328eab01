"""Fakes of the tensorrt and cuda-python modules, just deep enough to drive cpgait's build, cache and runner code.

TensorRT cannot be installed on this project's machines (GPU.md), so these stand in for it. Each fake follows the
real Python API's names, signatures and failure values (None from `create_timing_cache` / `get_timing_cache` /
`create_execution_context`, False from `set_timing_cache` on a header mismatch, None from
`build_serialized_network`), as read from the TensorRT 10/11 Python API docs. "Device memory" is host memory here,
so a fake engine can really compute (it doubles its input) and the runner's copies are really checked.
"""

from __future__ import annotations

import ctypes
import enum
from types import SimpleNamespace

import numpy as np

TIMING_MAGIC = b"TC1:"


class FakeTimingCache:
    def __init__(self, device: str, entries: bytes = b"") -> None:
        self.device, self.entries = device, entries

    def serialize(self) -> bytes:
        return TIMING_MAGIC + self.device.encode() + b"|" + self.entries


class FakeConfig:
    def __init__(self, device: str, return_no_timing_cache: bool = False) -> None:
        self.device = device
        self.flags: list[object] = []
        self.timing_cache: FakeTimingCache | None = None
        self.return_no_timing_cache = return_no_timing_cache
        self.int8_calibrator = None

    def set_memory_pool_limit(self, pool, size) -> None:
        pass

    def set_flag(self, flag) -> None:
        self.flags.append(flag)

    def add_optimization_profile(self, profile) -> None:
        self.profile = profile

    def set_calibration_profile(self, profile) -> None:
        pass

    def create_timing_cache(self, blob: bytes) -> FakeTimingCache | None:
        if not blob:
            return FakeTimingCache(self.device)
        if not blob.startswith(TIMING_MAGIC) or b"|" not in blob:
            return None  # TensorRT logs an error and returns nullptr for a blob it cannot parse
        device, entries = blob[len(TIMING_MAGIC) :].split(b"|", 1)
        return FakeTimingCache(device.decode(), entries)

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        if cache.device != self.device and not ignore_mismatch:
            return False  # the cache's header names another device
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache | None:
        if self.return_no_timing_cache or self.timing_cache is None:
            return None
        return FakeTimingCache(self.device, self.timing_cache.entries + b"t")


class FakeTensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape = name, shape


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name, min, opt, max) -> None:
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class FakeNetwork:
    def __init__(self, inputs: list[FakeTensor]) -> None:
        self.inputs = inputs

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> FakeTensor:
        return self.inputs[i]


class IOMode(enum.Enum):
    INPUT = 0
    OUTPUT = 1


class FakeContext:
    """Doubles input 'x' into output 'y' (float32), reading and writing the "device" (host) addresses it was given."""

    def __init__(self) -> None:
        self.addresses: dict[str, int] = {}
        self.shape: tuple[int, ...] | None = None

    def set_input_shape(self, name: str, shape) -> bool:
        if not 1 <= shape[0] <= 8:
            return False
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.shape

    def set_tensor_address(self, name: str, ptr: int) -> None:
        self.addresses[name] = ptr

    def execute_async_v3(self, stream: int) -> bool:
        n = int(np.prod(self.shape))
        x = np.frombuffer((ctypes.c_float * n).from_address(self.addresses["x"]), np.float32)
        y = np.frombuffer((ctypes.c_float * n).from_address(self.addresses["y"]), np.float32)
        y[:] = 2 * x
        return True


class FakeEngine:
    num_io_tensors = 2

    def __init__(self, no_context: bool = False) -> None:
        self.no_context = no_context

    def create_execution_context(self):
        return None if self.no_context else FakeContext()

    def get_tensor_name(self, i: int) -> str:
        return ("x", "y")[i]

    def get_tensor_dtype(self, name: str) -> str:
        return "float32"

    def get_tensor_mode(self, name: str) -> IOMode:
        return IOMode.INPUT if name == "x" else IOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return (-1, 2)


def fake_tensorrt(
    version: str = "10.3.0",
    device: str = "orin",
    inputs: tuple[tuple[str, tuple[int, ...]], ...] = (("x", (-1, 2)),),
    no_timing_cache: bool = False,
    no_context: bool = False,
) -> SimpleNamespace:
    """A tensorrt module; `trt.builds` counts engine builds, `trt.configs` keeps each build's config."""
    trt = SimpleNamespace(__version__=version, builds=0, configs=[])

    class Builder:
        def __init__(self, logger) -> None:
            pass

        def create_network(self, flags: int) -> FakeNetwork:
            trt.network_flags = flags
            return FakeNetwork([FakeTensor(n, s) for n, s in inputs])

        def create_builder_config(self) -> FakeConfig:
            config = FakeConfig(device, return_no_timing_cache=no_timing_cache)
            trt.configs.append(config)
            return config

        def create_optimization_profile(self) -> FakeProfile:
            return FakeProfile()

        def build_serialized_network(self, network, config) -> bytes:
            trt.builds += 1
            return b"ENGINE" + bytes(range(64)) * 4

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger) -> None:
            pass

        def parse(self, blob: bytes) -> bool:
            return True

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, blob: bytes):
            return FakeEngine(no_context) if blob.startswith(b"ENGINE") else None

    class Logger:
        WARNING = 2

        def __init__(self, level) -> None:
            pass

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    trt.Builder, trt.OnnxParser, trt.Runtime, trt.Logger = Builder, OnnxParser, Runtime, Logger
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    trt.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=5)
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE=0)
    trt.BuilderFlag = SimpleNamespace(FP16="FP16", INT8="INT8")
    trt.TensorIOMode = IOMode
    trt.nptype = lambda dtype: np.dtype(dtype).type
    return trt


class FakeCudart:
    """cuda-python's runtime module over host memory; records what is allocated and freed."""

    cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)

    def __init__(self, fail_stream_destroy: bool = False) -> None:
        self.live: dict[int, ctypes.Array] = {}
        self.pinned: set[int] = set()
        self.streams: set[int] = set()
        self.fail_stream_destroy = fail_stream_destroy
        self.async_copies = 0

    def _alloc(self, nbytes: int) -> int:
        block = ctypes.create_string_buffer(nbytes)
        self.live[ctypes.addressof(block)] = block
        return ctypes.addressof(block)

    def cudaMalloc(self, nbytes: int):
        return 0, self._alloc(nbytes)

    def cudaFree(self, ptr: int):
        return (0,) if self.live.pop(ptr, None) is not None else (1,)

    def cudaMallocHost(self, nbytes: int):
        ptr = self._alloc(nbytes)
        self.pinned.add(ptr)
        return 0, ptr

    def cudaFreeHost(self, ptr: int):
        self.pinned.discard(ptr)
        return self.cudaFree(ptr)

    def cudaStreamCreate(self):
        self.streams.add(len(self.streams) + 1)
        return 0, len(self.streams)

    def cudaStreamDestroy(self, stream: int):
        if self.fail_stream_destroy:
            return (700,)
        self.streams.discard(stream)
        return (0,)

    def cudaMemcpyAsync(self, dst: int, src: int, nbytes: int, kind, stream):
        self.async_copies += 1
        staged = dst if kind == self.cudaMemcpyKind.cudaMemcpyDeviceToHost else src
        if staged not in self.pinned:
            raise AssertionError("asynchronous copy from pageable host memory")
        ctypes.memmove(dst, src, nbytes)
        return (0,)

    def cudaMemcpy(self, dst: int, src: int, nbytes: int, kind):
        ctypes.memmove(dst, src, nbytes)
        return (0,)

    def cudaStreamSynchronize(self, stream):
        return (0,)
