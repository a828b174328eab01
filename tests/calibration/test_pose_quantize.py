"""INT8 pose landmark models: the keypoint gate compares them with FP32 on walker crops and refuses a broken one."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cpgait.calibration.pose_quantize import (
    KeypointThresholds,
    _RecordingRunner,
    keypoint_gate,
    output_convs,
    quantize_landmarks,
)
from cpgait.calibration.qdq_rules import check_qdq_model
from cpgait.calibration.quantize import QUANT_METADATA_KEY, QuantizeSettings
from cpgait.errors import CpgaitError
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.pose.blazepose import BlazePose
from cpgait.runtime.pose.interface import asset

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """The lite landmark model's inputs on messi5.jpg and on 7 shifted / mirrored copies (the player's crops)."""
    image = cv2.imread(str(DATA / "messi5.jpg"))
    recorder = _RecordingRunner(OnnxRuntimeRunner(asset("blazepose_landmarks_lite")))
    pose = BlazePose(landmarks=asset("blazepose_landmarks_lite"), tracking=False)
    pose.landmarks = recorder
    for variant in [image, image[:, ::-1]]:
        for shift in (0, 8, 16, 24):
            assert pose(np.ascontiguousarray(np.roll(variant, shift, axis=1))) is not None
    return np.stack(recorder.crops[:8])


@pytest.fixture(scope="module")
def lite() -> OnnxRuntimeRunner:
    return OnnxRuntimeRunner(asset("blazepose_landmarks_lite"), threads=1)


def test_the_same_model_passes_with_no_error(crops: np.ndarray, lite: OnnxRuntimeRunner) -> None:
    report = keypoint_gate(lite, lite, crops)
    assert report.ok and report.median_px == 0 and report.p95_px == 0 and report.decision_changes == 0
    assert "PASS" in report.summary() and report.crops == len(crops)


def test_a_deliberately_broken_quantization_is_refused(crops: np.ndarray, lite: OnnxRuntimeRunner) -> None:
    # calibrated on black images: every activation range is empty, so the INT8 model cannot follow real crops
    broken = quantize_landmarks(asset("blazepose_landmarks_lite"), np.zeros_like(crops[:2]), QuantizeSettings())
    assert check_qdq_model(broken).ok  # a well-formed Q/DQ file: only the gate can tell that it is useless
    report = keypoint_gate(lite, OnnxRuntimeRunner(broken.SerializeToString(), threads=1), crops)
    assert not report.ok and report.median_px > KeypointThresholds().median_px
    assert "FAIL" in report.summary()
    meta = json.loads(next(p.value for p in broken.metadata_props if p.key == QUANT_METADATA_KEY))
    assert meta["recipe"] == "ort" and meta["float_nodes"]  # the output convolutions stayed in float


def test_the_output_convolutions_are_the_heads() -> None:
    import onnx

    heads = output_convs(onnx.load(str(asset("blazepose_landmarks_lite"))))
    assert 3 <= len(heads) <= 8  # landmarks, presence flag, heatmap, segmentation, world landmarks


@pytest.mark.parametrize("kwargs", [{"median_px": 0}, {"median_px": 3.0, "p95_px": 2.0}, {"max_decision_changes": 1.5}])
def test_gate_thresholds_are_validated(kwargs: dict) -> None:
    with pytest.raises(CpgaitError, match="keypoint gate"):
        KeypointThresholds(**kwargs)


@pytest.mark.parametrize(
    "args,message",
    [
        (["calibrate", "blazepose", "-o", "{out}"], "give --data SEQUENCES"),
        (["calibrate", "blazepose", "--data", "x", "--frames", "v.mp4", "-o", "{out}"], "not both or neither"),
        (["calibrate", "movenet", "--frames", "{video}", "-o", "{out}"], "INT8 calibration takes one of"),
        (["calibrate", "blazepose", "--frames", "missing.mp4", "-o", "{out}"], "--frames missing.mp4"),
    ],
)
def test_calibrate_pose_bad_input_exits_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import sys

    from cpgait.cli import main

    video = tmp_path / "v.avi"
    video.write_bytes(b"")
    out = tmp_path / "int8.onnx"
    monkeypatch.setattr(sys, "argv", ["cpgait", *[a.format(out=out, video=video) for a in args]])
    with pytest.raises(SystemExit, match="^2$") as done:
        main()
    err = capsys.readouterr().err
    assert done.value.code == 2 and message in err and "Traceback" not in err
    assert not out.exists()
