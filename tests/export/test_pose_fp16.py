"""FP16 pose networks (`cpgait export-pose`): written, checked against FP32, and run through `--pose-models`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import cpgait.export.pose_fp16 as pose_fp16
from cpgait.errors import CpgaitError
from cpgait.runtime.backends.model_file import model_kind
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.pose.catalog import POSE_NETWORKS, load_pose_model

pytest.importorskip("onnxconverter_common", reason="the export extra (pip install -e '.[export]') converts to FP16")

DATA = Path(__file__).resolve().parents[1] / "data"
REFERENCE = Path(__file__).resolve().parents[2] / "runtime" / "assets" / "reference.onnx"


@pytest.fixture(scope="module")
def fp16_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pose-fp16")
    written = pose_fp16.export_pose_fp16("blazepose", folder)
    assert [n.path.name for n in written] == ["blazepose_detector.onnx", "blazepose_landmarks_full.onnx"]
    assert all(0 < n.max_relative_diff <= pose_fp16.FP16_TOLERANCE for n in written)  # float16 does round
    return folder


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return cv2.imread(str(DATA / "messi5.jpg"))


@pytest.fixture(scope="module")
def fp32_keypoints(image: np.ndarray) -> np.ndarray:
    """The shipped FP32 pipeline's keypoints on the sample still (ONNX Runtime CPU): what FP16 must reproduce."""
    want = load_pose_model("blazepose", "ort-cpu")(image)
    assert want is not None
    return want.keypoints


def _pixel_error(image: np.ndarray, backend: str, models: Path, fp32_keypoints: np.ndarray) -> np.ndarray:
    """Per-keypoint distance (image px) between the pipeline on `backend` with the networks in `models` and FP32."""
    got = load_pose_model("blazepose", backend, models=models)(image)
    assert got is not None
    return np.hypot(*(got.keypoints[:, :2] - fp32_keypoints[:, :2]).T)


def test_the_files_compute_in_fp16_with_fp32_inputs_and_outputs(fp16_folder: Path) -> None:
    import onnx

    for name in POSE_NETWORKS["blazepose"]:
        model = onnx.load(str(fp16_folder / f"{name}.onnx"))
        assert model_kind(fp16_folder / f"{name}.onnx") == "fp16"
        io = [*model.graph.input, *model.graph.output]
        assert {v.type.tensor_type.elem_type for v in io} == {onnx.TensorProto.FLOAT}, name


def test_the_fp16_pipeline_finds_the_fp32_keypoints(
    fp16_folder: Path, image: np.ndarray, fp32_keypoints: np.ndarray
) -> None:
    error = _pixel_error(image, "ort-cpu", fp16_folder, fp32_keypoints)
    assert np.median(error) < 0.5 and error.max() < 3.0, error  # image pixels (measured: well under 1 px)


def test_a_conversion_outside_the_tolerance_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx
    from onnx import numpy_helper

    convert = pose_fp16.to_fp16

    def broken(model: onnx.ModelProto) -> onnx.ModelProto:
        half = convert(model)
        big = max(half.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        big.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(big) * 1.5, big.name))
        return half

    monkeypatch.setattr(pose_fp16, "to_fp16", broken)
    (tmp_path / "blazepose_detector.onnx").write_bytes(b"kept")
    with pytest.raises(CpgaitError, match=r"blazepose_detector.onnx: FP16 differs from FP32 by .* \(not written\)"):
        pose_fp16.export_pose_fp16("blazepose", tmp_path, overwrite=True)
    assert (tmp_path / "blazepose_detector.onnx").read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blazepose_detector.onnx"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cpgait.cli", "export-pose", *args], capture_output=True, text=True)


def test_the_cli_refuses_movenet_an_existing_network_and_a_missing_one(fp16_folder: Path, tmp_path: Path) -> None:
    done = _cli("movenet", "-o", str(tmp_path / "m"))
    assert done.returncode == 2 and "FP16 variants are made for blazepose, blazepose-lite only" in done.stderr
    assert not (tmp_path / "m").exists() and "Traceback" not in done.stderr
    before = (fp16_folder / "blazepose_detector.onnx").read_bytes()
    done = _cli("blazepose", "-o", str(fp16_folder))
    assert done.returncode == 2 and "blazepose_detector.onnx: already exists; pass --overwrite" in done.stderr
    assert (fp16_folder / "blazepose_detector.onnx").read_bytes() == before
    with pytest.raises(CpgaitError, match="blazepose_landmarks_lite.onnx: pose network missing from"):
        load_pose_model("blazepose-lite", "ort-cpu", models=fp16_folder)


def test_the_cli_writes_the_lite_networks(tmp_path: Path) -> None:
    done = _cli("blazepose-lite", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "blazepose_landmarks_lite.onnx: FP16 inside, FP32 I/O" in done.stdout
    assert model_kind(tmp_path / "blazepose_landmarks_lite.onnx") == "fp16"


@pytest.mark.gpu
@pytest.mark.skipif(
    RUNTIME_BACKENDS.unavailable_reason("ort-cuda") is not None,
    reason=str(RUNTIME_BACKENDS.unavailable_reason("ort-cuda")),
)
def test_fp16_on_ort_cuda_finds_the_fp32_cpu_keypoints(
    fp16_folder: Path, image: np.ndarray, fp32_keypoints: np.ndarray
) -> None:
    assert np.median(_pixel_error(image, "ort-cuda", fp16_folder, fp32_keypoints)) < 1.0


@pytest.mark.tensorrt
@pytest.mark.skipif(
    RUNTIME_BACKENDS.unavailable_reason("trt") is not None, reason=str(RUNTIME_BACKENDS.unavailable_reason("trt"))
)
def test_fp16_engines_find_the_fp32_cpu_keypoints(
    fp16_folder: Path, image: np.ndarray, fp32_keypoints: np.ndarray
) -> None:
    # engines built at the files' precision, FP16
    assert np.median(_pixel_error(image, "trt", fp16_folder, fp32_keypoints)) < 1.0


@pytest.mark.parametrize("verb", ["pose", "run"])
def test_a_folder_without_the_networks_is_refused_before_any_frame(verb: str, tmp_path: Path) -> None:
    out = tmp_path / "walk.npz"
    args = ["-o", str(out)] if verb == "pose" else ["--model", str(REFERENCE), "--events", str(tmp_path / "e.jsonl")]
    done = subprocess.run(
        [sys.executable, "-m", "cpgait.cli", verb, str(DATA / "walk.mp4"), *args, "--pose-models", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{tmp_path}/blazepose_detector.onnx: pose network missing from {tmp_path}" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
