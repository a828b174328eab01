"""Legacy implicit INT8 for TensorRT 10 (JetPack 6): an entropy calibrator fed by the same windows as `calibrate`.

TensorRT 11 removed implicit quantization (`IInt8EntropyCalibrator2`, `BuilderFlag.INT8`); there INT8 comes from
the Q/DQ model only. The calibration cache file makes the (slow) calibration a one-off per model and data set. It
is keyed: a side-car `<cache>.json` records the sha256 of the model, of the calibration windows and of the cache
itself, and the TensorRT version. A cache is read only when all of them match (with --data) or when model, TensorRT
and cache bytes match (without --data); otherwise, after retraining or new data, the calibrator recalibrates (with
--data) or refuses (without), instead of giving the engine stale scales. Cache and side-car are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.atomic import write_atomic
from cpgait.runtime.data.windows import WindowSet

log = logging.getLogger(__name__)

CACHE_FORMAT = "cpgait.calibration-cache/1"


def windows_sha256(windows: WindowSet) -> str:
    """sha256 of the calibration windows: every input's name, dtype, shape and values."""
    digest = hashlib.sha256()
    for name in sorted(windows.inputs):
        array = np.ascontiguousarray(windows.inputs[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def cache_key_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".json")


def read_cache_key(cache: Path) -> dict | None:
    """The side-car of a calibration cache, or None when it is missing or unreadable."""
    side = cache_key_path(cache)
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == CACHE_FORMAT else None


def stale_reason(cache: Path, model_sha256: str, tensorrt_version: str, data_sha256: str | None) -> str | None:
    """Why the cache at `cache` cannot be used for this model, TensorRT and data (None when it can)."""
    if not cache.is_file():
        return "no cache yet"
    key = read_cache_key(cache)
    if key is None:
        return f"no readable key {cache_key_path(cache).name} (a cache of unknown origin)"
    if key.get("model_sha256") != model_sha256:
        return f"made for another model (sha256 {str(key.get('model_sha256'))[:12]})"
    if key.get("tensorrt_version") != tensorrt_version:
        return f"made with TensorRT {key.get('tensorrt_version')}, this is {tensorrt_version}"
    if data_sha256 is not None and key.get("data_sha256") != data_sha256:
        return "made from other calibration windows"
    if hashlib.sha256(cache.read_bytes()).hexdigest() != key.get("cache_sha256"):
        return "its bytes do not match its key (truncated or edited)"
    return None


def make_entropy_calibrator(
    windows: WindowSet | None, cache_file: str | Path, model_sha256: str, batch: int = 1
) -> Any:
    """An `IInt8EntropyCalibrator2` over `windows` in batches of `batch` (the profile's opt batch), with a keyed cache.

    The class is defined here, not at module level, because its base class comes from tensorrt, which is imported
    only when a TensorRT 10 build asks for implicit INT8. `free()` releases its device memory (`build_engine` calls
    it when the build ends).
    """
    from cpgait.runtime.backends.cuda import DeviceBuffer, cuda_check, cuda_runtime
    from cpgait.runtime.backends.trt_engine import import_tensorrt

    trt = import_tensorrt()
    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise CpgaitError(
            f"TensorRT {trt.__version__} has no implicit INT8 calibrator; build the Q/DQ model from "
            "`cpgait calibrate` instead"
        )
    cache = Path(cache_file)
    version = str(trt.__version__)
    data_sha = windows_sha256(windows) if windows is not None else None
    stale = stale_reason(cache, model_sha256, version, data_sha)
    if stale and windows is None:
        raise CpgaitError(
            f"{cache}: calibration cache unusable ({stale}); pass --data with sequence files to recalibrate"
        )
    if stale and cache.is_file() and windows is not None:
        log.warning("%s: %s; recalibrating from %s", cache, stale, windows.origin)
    if windows is not None and len(windows) < batch:
        raise CpgaitError(f"{len(windows)} calibration window(s); a batch of {batch} is needed at least")
    cudart = cuda_runtime()
    # without --data the (valid) cache is only re-read; TensorRT may still write it back: keep where it came from
    origin = (
        {"data_sha256": data_sha, "windows": len(windows), "origin": windows.origin}
        if windows is not None
        else {k: (read_cache_key(cache) or {}).get(k) for k in ("data_sha256", "windows", "origin")}
    )

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[name-defined]  # a runtime-imported base
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
            return None if stale else cache.read_bytes()

        def write_calibration_cache(self, data: Any) -> None:
            blob = bytes(data)
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache, blob)
            key = {
                "format": CACHE_FORMAT,
                "model_sha256": model_sha256,
                **origin,
                "tensorrt_version": version,
                "cache_sha256": hashlib.sha256(blob).hexdigest(),
            }
            write_atomic(cache_key_path(cache), json.dumps(key, indent=2, sort_keys=True).encode())

        def free(self) -> None:
            """Release the device buffers (every one is tried; the first failure is raised after)."""
            failures = []
            for buffer in self._buffers.values():
                try:
                    buffer.free()
                except RuntimeError as exc:
                    failures.append(exc)
            self._buffers = {}
            if failures:
                raise failures[0]

    return EntropyCalibrator()
