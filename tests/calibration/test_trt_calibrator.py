"""The TensorRT 10 calibration cache is keyed to model, data, TensorRT version and its own bytes (fake tensorrt)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from cpgait.calibration.trt_calibrator import make_entropy_calibrator, windows_sha256
from cpgait.errors import CpgaitError
from cpgait.runtime.backends import cuda
from cpgait.runtime.data.windows import WindowSet
from tests.runtime.backends.fakes import FakeCudart, fake_tensorrt

MODEL = "ab" * 32


def _windows(seed: int = 0, n: int = 4) -> WindowSet:
    rng = np.random.default_rng(seed)
    return WindowSet({"x": rng.standard_normal((n, 2)).astype(np.float32)}, np.zeros(n, np.int64), f"seed {seed}")


@pytest.fixture
def cudart(monkeypatch: pytest.MonkeyPatch) -> FakeCudart:
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    fake = FakeCudart()
    monkeypatch.setattr(cuda, "cuda_runtime", lambda: fake)
    return fake


def _calibrate(cache: Path, windows: WindowSet | None, model: str = MODEL) -> object:
    """One calibration as TensorRT drives it: read the cache; without one, pull batches, then write it."""
    calibrator = make_entropy_calibrator(windows, cache, model, batch=2)
    if calibrator.read_calibration_cache() is None:
        while calibrator.get_batch(["x"]) is not None:
            pass
        calibrator.write_calibration_cache(b"TRT-1003-EntropyCalibration2\nx: 3c000000\n")
    calibrator.free()
    return calibrator


def test_a_matching_cache_is_reused_with_or_without_data(tmp_path: Path, cudart: FakeCudart) -> None:
    cache = tmp_path / "calib.cache"
    _calibrate(cache, _windows())
    key = json.loads((tmp_path / "calib.cache.json").read_text())
    assert key["model_sha256"] == MODEL and key["data_sha256"] == windows_sha256(_windows())
    assert key["tensorrt_version"] == "10.3.0" and key["windows"] == 4
    for windows in (_windows(), None):
        assert make_entropy_calibrator(windows, cache, MODEL, batch=2).read_calibration_cache() == cache.read_bytes()
    assert not cudart.live  # free() released the batches' device memory


@pytest.mark.parametrize("change", ["model", "data", "bytes", "key", "tensorrt"])
def test_a_stale_cache_is_recalibrated_with_data_and_refused_without(
    tmp_path: Path, cudart: FakeCudart, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, change: str
) -> None:
    cache = tmp_path / "calib.cache"
    _calibrate(cache, _windows())
    model, windows = MODEL, _windows()
    if change == "model":  # retrained
        model = "cd" * 32
    elif change == "data":
        windows = _windows(seed=1)
    elif change == "bytes":  # truncated
        cache.write_bytes(cache.read_bytes()[:10])
    elif change == "key":  # a cache from elsewhere, without its key
        (tmp_path / "calib.cache.json").unlink()
    else:
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version="10.4.0"))
    with caplog.at_level(logging.WARNING):
        calibrator = make_entropy_calibrator(windows, cache, model, batch=2)
    assert calibrator.read_calibration_cache() is None and "recalibrating" in caplog.text
    if change != "data":
        with pytest.raises(CpgaitError, match="calibration cache unusable"):
            make_entropy_calibrator(None, cache, model, batch=2)


def test_no_cache_and_no_data_is_refused(tmp_path: Path, cudart: FakeCudart) -> None:
    with pytest.raises(CpgaitError, match=r"calib\.cache: calibration cache unusable \(no cache yet\)"):
        make_entropy_calibrator(None, tmp_path / "calib.cache", MODEL)


def test_batches_are_full_and_freed(tmp_path: Path, cudart: FakeCudart) -> None:
    calibrator = make_entropy_calibrator(_windows(n=5), tmp_path / "c.cache", MODEL, batch=2)
    pointers = [calibrator.get_batch(["x"]) for _ in range(3)]
    assert pointers[0] and pointers[1] and pointers[2] is None  # the short last batch ends calibration
    assert len(cudart.live) == 1
    calibrator.free()
    assert not cudart.live
