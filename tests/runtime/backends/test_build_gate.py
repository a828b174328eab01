"""`cpgait build` gates every classifier engine against ONNX Runtime on --data windows and deletes one that fails.

TensorRT is faked at its two seams: `build_engine` writes an engine file and side-car, and `TensorRTRunner` runs the
ONNX on ONNX Runtime (optionally corrupting its logits, as a broken INT8 engine would).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from cpgait.runtime.backends import trt_engine as engine
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.backends.trt_engine import DeviceInfo, Profile, engine_key, write_sidecar
from cpgait.runtime.backends.trt_runner import TensorRTRunner
from cpgait.runtime.core.contract import ModelContract

ORIN = DeviceInfo("10.3.0", "Orin", "8.7", 16, 61)


def _fake_tensorrt(monkeypatch: pytest.MonkeyPatch, onnx_path: Path, corrupt: bool) -> dict:
    built = {}

    def fake_build(model, precision, profile, out_dir, **options):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plan = out / f"m.{precision}.plan"
        plan.write_bytes(b"engine")
        contract = ModelContract.read_onnx(model)
        key = engine_key("00" * 32, precision, profile, ORIN)
        write_sidecar(plan.with_suffix(".json"), key, "null" if contract is None else contract.to_json(), b"engine")
        built.update(plan=plan, options=options)
        return plan

    def fake_activate(self) -> None:
        self._ort = OnnxRuntimeRunner(onnx_path).activate()
        self._specs, self._outputs, self.contract = self._ort._specs, self._ort._outputs, self._ort.contract

    def fake_infer(self, feed):
        out = self._ort._infer(feed)
        return {k: (np.roll(v, 1, axis=1) if corrupt else v) for k, v in out.items()}

    monkeypatch.setattr(engine, "build_engine", fake_build)
    monkeypatch.setattr(TensorRTRunner, "_activate", fake_activate)
    monkeypatch.setattr(TensorRTRunner, "_infer", fake_infer)
    monkeypatch.setattr(TensorRTRunner, "_deactivate", lambda self: None)
    return built


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from cpgait.cli import main

    monkeypatch.setattr(sys, "argv", ["cpgait", "build", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize("corrupt,code", [(False, 0), (True, 1)])
def test_an_engine_outside_the_gate_is_deleted(
    tiny_onnx: Path,
    synth_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    corrupt: bool,
    code: int,
) -> None:
    built = _fake_tensorrt(monkeypatch, tiny_onnx, corrupt)
    assert _cli(monkeypatch, str(tiny_onnx), "--out", str(tmp_path / "e"), "--data", str(synth_data)) == code
    captured = capsys.readouterr()
    plan = built["plan"]
    if corrupt:
        assert "gate FAIL" in captured.err and "was deleted" in captured.err
        assert not plan.exists() and not plan.with_suffix(".json").exists()
    else:
        assert "gate PASS" in captured.out and plan.is_file()


def test_a_classifier_build_without_data_is_refused(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    built = _fake_tensorrt(monkeypatch, tiny_onnx, corrupt=False)
    assert _cli(monkeypatch, str(tiny_onnx), "--out", str(tmp_path / "e")) == 2
    assert "pass --data with held-out sequence files" in capsys.readouterr().err and not built


def test_a_pose_model_builds_without_a_contract_and_says_it_is_not_gated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    pose = Path(engine.__file__).parents[1] / "assets" / "movenet_lightning.onnx"
    built = _fake_tensorrt(monkeypatch, pose, corrupt=False)
    assert _cli(monkeypatch, str(pose), "--precision", "fp16", "--out", str(tmp_path / "e")) == 0
    assert built["options"]["require_contract"] is False and built["plan"].is_file()
    assert "not gated (a model without a contract (pose model))" in capsys.readouterr().err


def test_profile_is_passed_through(tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_build(model, precision, profile, out_dir, **options):
        seen["profile"] = profile
        raise engine.CpgaitError("stop")

    monkeypatch.setattr(engine, "build_engine", fake_build)
    assert _cli(monkeypatch, str(tiny_onnx), "--batch", "2,4,8", "--no-gate") == 2
    assert seen["profile"] == Profile(2, 4, 8)
