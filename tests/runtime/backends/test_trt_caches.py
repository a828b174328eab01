"""Engine, side-car, timing-cache and runner behaviour against fakes of tensorrt and cuda-python (tests/.../fakes.py):
truncated files, caches from another device, a power cut mid-write, missing values from TensorRT, leaks on failure.

These run the real `build_engine` / `TensorRTRunner` code; only TensorRT and CUDA are faked (GPU.md: neither is
available on this project's machines).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.backends import cuda, trt_runner
from cpgait.runtime.backends import trt_engine as engine
from cpgait.runtime.backends.trt_engine import DeviceInfo, Profile, build_engine, load_engine, timing_cache_path
from cpgait.runtime.core import atomic
from tests.runtime.backends.fakes import FakeCudart, fake_tensorrt
from tests.runtime.backends.test_trt_engine import _onnx

AGX_ORIN = DeviceInfo("10.3.0", "Orin", "8.7", 16, 61)
ORIN_NANO = DeviceInfo("10.3.0", "Orin", "8.7", 8, 7)


@pytest.fixture
def trt(monkeypatch: pytest.MonkeyPatch):
    fake = fake_tensorrt(device="agx")
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(engine, "current_device", lambda: AGX_ORIN)
    return fake


def _build(tmp_path: Path, **options) -> Path:
    return build_engine(tmp_path / "m.onnx", "fp32", Profile(1, 2, 8), tmp_path / "engines", **options)


def test_a_build_writes_engine_side_car_and_timing_cache_then_hits_the_cache(tmp_path: Path, trt) -> None:
    _onnx(tmp_path / "m.onnx")
    plan = _build(tmp_path)
    side = json.loads(plan.with_suffix(".json").read_text())
    assert side["format"] == "cpgait.engine/2" and side["engine_bytes"] == plan.stat().st_size
    assert side["key"]["device"] == {
        "tensorrt_version": "10.3.0",
        "gpu_name": "Orin",
        "compute_capability": "8.7",
        "multiprocessors": 16,
        "memory_gib": 61,
    }
    assert timing_cache_path(tmp_path / "engines", AGX_ORIN).read_bytes().startswith(b"TC1:agx|")
    assert trt.configs[0].profile.shapes == {"x": ((1, 2), (2, 2), (8, 2))}
    assert _build(tmp_path) == plan and trt.builds == 1  # the cache hit builds nothing
    assert not list((tmp_path / "engines").glob("*.part"))


@pytest.mark.parametrize("damage", ["truncate", "replace", "drop-side-car", "foreign-side-car"])
def test_a_damaged_cached_engine_is_reported_and_rebuilt(
    tmp_path: Path, trt, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    _onnx(tmp_path / "m.onnx")
    plan = _build(tmp_path)
    blob = plan.read_bytes()
    side = plan.with_suffix(".json")
    if damage == "truncate":  # a power cut before atomic writes: half an engine
        plan.write_bytes(blob[: len(blob) // 2])
    elif damage == "replace":
        plan.write_bytes(b"ENGINE" + b"\0" * (len(blob) - 6))
    elif damage == "drop-side-car":
        side.unlink()
    else:
        data = json.loads(side.read_text())
        data["key"]["device"]["multiprocessors"] = 8
        side.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        assert _build(tmp_path) == plan
    assert trt.builds == 2 and plan.read_bytes() == blob
    assert "rebuilding the cached engine" in caplog.text


def test_a_truncated_engine_is_refused_before_tensorrt_reads_it(tmp_path: Path, trt) -> None:
    _onnx(tmp_path / "m.onnx")
    plan = _build(tmp_path)
    plan.write_bytes(plan.read_bytes()[:100])
    with pytest.raises(CpgaitError, match=r"100 bytes that do not match its side-car .*truncated or was replaced"):
        load_engine(plan, here=AGX_ORIN)


def test_an_agx_orin_engine_is_refused_on_an_orin_nano(tmp_path: Path, trt) -> None:
    _onnx(tmp_path / "m.onnx")
    plan = _build(tmp_path)
    assert load_engine(plan, here=AGX_ORIN)[0] == plan.read_bytes()
    with pytest.raises(CpgaitError, match=r"built for Orin \(sm 8\.7, 16 SMs, 61 GiB\).*this is Orin \(sm 8\.7, 8 SMs"):
        load_engine(plan, here=ORIN_NANO)


@pytest.mark.parametrize(
    "blob,reason",
    [(b"TC1:ag", "truncated"), (b"garbage", "not a cache"), (b"TC1:nano|entries", "from another device")],
)
def test_a_bad_timing_cache_is_replaced_by_an_empty_one(
    tmp_path: Path, trt, caplog: pytest.LogCaptureFixture, blob: bytes, reason: str
) -> None:
    _onnx(tmp_path / "m.onnx")
    cache = timing_cache_path(tmp_path / "engines", AGX_ORIN)
    cache.parent.mkdir()
    cache.write_bytes(blob)
    with caplog.at_level(logging.WARNING):
        plan = _build(tmp_path)
    assert plan.is_file() and trt.configs[0].timing_cache.device == "agx"
    assert "starting an empty timing cache" in caplog.text, reason
    assert cache.read_bytes() == b"TC1:agx|t"  # rewritten for this device


def test_a_good_timing_cache_is_used_and_extended(tmp_path: Path, trt, caplog: pytest.LogCaptureFixture) -> None:
    _onnx(tmp_path / "m.onnx")
    cache = timing_cache_path(tmp_path / "engines", AGX_ORIN)
    cache.parent.mkdir()
    cache.write_bytes(b"TC1:agx|old")
    with caplog.at_level(logging.WARNING):
        _build(tmp_path)
    assert trt.configs[0].timing_cache.entries == b"old" and cache.read_bytes() == b"TC1:agx|oldt"
    assert "timing cache" not in caplog.text


def test_no_timing_cache_from_tensorrt_after_a_build_is_only_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(device="agx", no_timing_cache=True))
    monkeypatch.setattr(engine, "current_device", lambda: AGX_ORIN)
    _onnx(tmp_path / "m.onnx")
    with caplog.at_level(logging.WARNING):
        plan = _build(tmp_path)
    assert plan.is_file() and plan.with_suffix(".json").is_file()
    assert "TensorRT returned no timing cache" in caplog.text
    assert not timing_cache_path(tmp_path / "engines", AGX_ORIN).exists()


def test_a_crash_while_writing_leaves_the_old_file_and_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "e.plan"
    target.write_bytes(b"old")

    def power_cut(src, dst):
        raise OSError(5, "power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        atomic.write_atomic(target, b"new engine")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["e.plan"]


def test_a_dynamic_dimension_besides_the_batch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(inputs=(("x", (-1, -1)),)))
    monkeypatch.setattr(engine, "current_device", lambda: AGX_ORIN)
    _onnx(tmp_path / "m.onnx")
    with pytest.raises(CpgaitError, match=r"input 'x': shape \(-1, -1\) has a dynamic dimension besides the batch"):
        _build(tmp_path)


def test_the_calibrator_is_freed_even_when_the_build_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trt = fake_tensorrt()
    trt.Builder.build_serialized_network = lambda self, network, config: None  # TensorRT's failure value
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(engine, "current_device", lambda: AGX_ORIN)
    freed = []

    class Calibrator:
        def free(self) -> None:
            freed.append(True)

    _onnx(tmp_path / "m.onnx")
    with pytest.raises(CpgaitError, match="could not build a int8 engine"):
        build_engine(
            tmp_path / "m.onnx", "int8", Profile(1, 1, 1), tmp_path / "engines", calibrator=lambda b: Calibrator()
        )
    assert freed == [True] and not list((tmp_path / "engines").glob("*.plan"))


@pytest.mark.parametrize(
    "driver,bindings,expected",
    [
        ((12, 6), "13.0.1", "cuda-python 13.0.1 is built for CUDA 13, but this NVIDIA driver supports CUDA 12.6"),
        ((12, 2), "12.9.0", None),
        ((13, 0), "13.0.1", None),
        ((13, 0), "12.6.0", None),
    ],
)
def test_a_cuda_python_newer_than_the_driver_is_named(driver, bindings, expected) -> None:
    reason = cuda.cuda_mismatch(driver, bindings)
    if expected is None:
        assert reason is None
    else:
        assert expected in reason and "cuda-python>=12.2,<13" in reason


def test_current_device_names_the_mismatch_instead_of_no_usable_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    monkeypatch.setattr(engine, "cuda_mismatch", lambda: "cuda-python 13.0.1 is built for CUDA 13, but ...")
    with pytest.raises(CpgaitError, match="cuda-python 13.0.1 is built for CUDA 13"):
        engine.current_device()


def _engine_file(tmp_path: Path, trt) -> Path:
    _onnx(tmp_path / "m.onnx")
    return _build(tmp_path)


def test_the_runner_runs_an_engine_through_pinned_buffers_and_frees_everything(
    tmp_path: Path, trt, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _engine_file(tmp_path, trt)
    cudart = FakeCudart()
    monkeypatch.setattr(trt_runner, "cuda_runtime", lambda: cudart)
    runner = trt_runner.TensorRTRunner(plan)
    with runner:
        for batch in (1, 3, 2):  # buffers grow, then are reused
            x = np.arange(2 * batch, dtype=np.float32).reshape(batch, 2)
            y = runner.infer({"x": x})["y"]
            assert np.array_equal(y, 2 * x)
        assert cudart.pinned and cudart.streams  # FakeCudart refuses async copies from pageable memory
    assert not cudart.live and not cudart.pinned and not cudart.streams


def test_a_missing_execution_context_is_named_and_nothing_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trt = fake_tensorrt(no_context=True)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(engine, "current_device", lambda: AGX_ORIN)
    plan = _engine_file(tmp_path, trt)
    cudart = FakeCudart()
    monkeypatch.setattr(trt_runner, "cuda_runtime", lambda: cudart)
    runner = trt_runner.TensorRTRunner(plan)
    with pytest.raises(CpgaitError, match="could not create an execution context"):
        runner.activate()
    assert not runner.is_active and runner._engine is None and not cudart.live and not cudart.streams


def test_a_failure_after_the_stream_exists_destroys_it(tmp_path: Path, trt, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _engine_file(tmp_path, trt)
    cudart = FakeCudart()
    monkeypatch.setattr(trt_runner, "cuda_runtime", lambda: cudart)
    trt.nptype = lambda dtype: (_ for _ in ()).throw(TypeError(f"no numpy type for {dtype}"))
    with pytest.raises(TypeError, match="no numpy type"):
        trt_runner.TensorRTRunner(plan).activate()
    assert not cudart.streams and not cudart.live
