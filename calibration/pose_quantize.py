"""INT8 (Q/DQ) BlazePose landmark models calibrated on video frames, written only when a keypoint gate passes.

`cpgait calibrate blazepose --frames VIDEO... -o landmarks.int8.onnx`: the walker crops (the landmark model's own
256x256 inputs, cut by the FP32 pipeline of `cpgait run` from every frame it measures) of the videos are split
alternately into calibration and held-out crops; the landmark network is quantized like the classifier
(`cpgait.calibration.quantize`: symmetric int8, per-channel weights, Conv only, biases in float, `--recipe` ort
or tensorrt, TensorRT-compatible), the convolutions that produce the outputs kept in float; then the **keypoint
gate** compares INT8 with FP32 on the held-out crops: median and p95 landmark error (the 33 points, in the crop's
256-px units) and how often the pose-presence decision (>= 0.5: keep tracking) changes.

Why INT8 does not pay for this network on ONNX Runtime CPU (measured on the demo clip, README "Pose models"): the
model is a MobileNet-like stack (96 convolutions, 38 of them depthwise, ReLU6 as Clip, 28 residual Adds, 5 Resize,
5 Pad, NHWC input transposed once) that MLAS runs in FP32 with its blocked NCHWc AVX-512 kernels; in Q/DQ form
every Add/Resize/Pad/Clip boundary dequantizes and requantizes, symmetric int8 activations (TensorRT's rule) take
ONNX Runtime's slower S8S8 path, and ReLU6 outputs use half of a symmetric range. And the error is spread over the
deep layers (no single layer to keep in float fixes it), so the gate refuses the full model at its defaults. The
INT8 file stays useful for TensorRT, whose INT8 kernels and fusions differ: `cpgait build` on a Jetson.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.calibration.quantize import QUANT_METADATA_KEY, QuantizeSettings, quantize_qdq
from cpgait.errors import CpgaitError, atomic_output, require_writable
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.pose.blazepose import LANDMARK_SIZE, NUM_LANDMARKS

if TYPE_CHECKING:
    import onnx

POSE_LANDMARK_MODELS = {"blazepose": "blazepose_landmarks_full", "blazepose-lite": "blazepose_landmarks_lite"}
MIN_CROPS = 20  # fewer walker crops than this say nothing about the ranges or the error


@dataclass(frozen=True)
class KeypointThresholds:
    """The keypoint gate: landmark error in the crop's 256-px units and the share of changed presence decisions."""

    median_px: float = 1.5
    p95_px: float = 5.0
    max_decision_changes: float = 0.01

    def __post_init__(self) -> None:
        if not (self.median_px > 0 and self.p95_px >= self.median_px and 0 <= self.max_decision_changes <= 1):
            raise CpgaitError(f"keypoint gate {self}: expected 0 < median_px <= p95_px and a decision share in [0, 1]")


@dataclass(frozen=True)
class KeypointGateReport:
    """INT8 vs FP32 landmarks on held-out crops."""

    crops: int
    median_px: float
    p95_px: float
    decision_changes: float
    thresholds: KeypointThresholds

    @property
    def ok(self) -> bool:
        t = self.thresholds
        return bool(
            self.median_px <= t.median_px
            and self.p95_px <= t.p95_px
            and self.decision_changes <= t.max_decision_changes
        )

    def summary(self) -> str:
        t = self.thresholds
        return (
            f"keypoint gate {'PASS' if self.ok else 'FAIL'} on {self.crops} held-out crops: median error "
            f"{self.median_px:.2f} px (<= {t.median_px}), p95 {self.p95_px:.2f} px (<= {t.p95_px}) at the crop's "
            f"{LANDMARK_SIZE}-px scale; presence decision changed on {100 * self.decision_changes:.1f} % "
            f"(<= {100 * t.max_decision_changes:.1f} %)"
        )


def landmarks_on(runner: Runner, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 33 landmarks `[N, 33, 2]` (crop pixels) and the presence decisions `[N]` of a landmark network on
    uint8 RGB crops `[N, 256, 256, 3]`."""
    name = runner.input_specs()[0].name
    points, present = [], []
    for crop in crops:
        out = runner.infer({name: (crop.astype(np.float32) / 255.0)[None]})
        points.append(out["Identity"].reshape(NUM_LANDMARKS, 5)[:33, :2])
        present.append(float(out["Identity_1"].reshape(())) >= 0.5)
    return np.stack(points).astype(np.float64), np.array(present)


def keypoint_gate(
    fp32: Runner, int8: Runner, crops: np.ndarray, thresholds: KeypointThresholds = KeypointThresholds()
) -> KeypointGateReport:
    """Compare two landmark networks on the same crops (see the module docstring)."""
    if len(crops) == 0:
        raise CpgaitError("keypoint gate: no held-out crops")
    ref, ref_present = landmarks_on(fp32, crops)
    got, got_present = landmarks_on(int8, crops)
    error = np.hypot(*(got - ref).transpose(2, 0, 1)).ravel()
    if not np.isfinite(error).all():
        error = np.where(np.isfinite(error), error, np.inf)
    return KeypointGateReport(
        crops=len(crops),
        median_px=float(np.median(error)),
        p95_px=float(np.percentile(error, 95)),
        decision_changes=float(np.mean(ref_present != got_present)),
        thresholds=thresholds,
    )


class _RecordingRunner(Runner):
    """A runner that keeps every input it is given (the walker crops), then runs the wrapped one."""

    def __init__(self, inner: Runner) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.crops: list[np.ndarray] = []

    def _activate(self) -> None:
        self.inner.activate()
        self._specs, self._outputs = self.inner.input_specs(), self.inner.output_names()

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.crops.append((next(iter(feed.values()))[0] * 255.0).round().clip(0, 255).astype(np.uint8))
        return self.inner.infer(feed)


def walker_crops(videos: Sequence[str | Path], pose_name: str = "blazepose") -> np.ndarray:
    """The landmark model's inputs `[N, 256, 256, 3]` (uint8 RGB) over every frame of `videos` on which the loop
    of `cpgait run` measures the walker with the FP32 model `pose_name`."""
    from cpgait.runtime.live.capture import open_source
    from cpgait.runtime.live.subject import SubjectPose
    from cpgait.runtime.pose.blazepose import BlazePose
    from cpgait.runtime.pose.interface import asset

    if pose_name not in POSE_LANDMARK_MODELS:
        raise CpgaitError(f"pose model {pose_name!r}; INT8 calibration takes one of {', '.join(POSE_LANDMARK_MODELS)}")
    crops: list[np.ndarray] = []
    for video in videos:
        if not Path(video).is_file():
            raise CpgaitError(f"--frames {video}: no such video file")
        recorder = _RecordingRunner(OnnxRuntimeRunner(asset(POSE_LANDMARK_MODELS[pose_name])))
        pose = BlazePose(landmarks=asset(POSE_LANDMARK_MODELS[pose_name]))
        pose.landmarks = recorder
        with open_source(str(video), paced=False) as source:
            stage = SubjectPose(pose, source.size, pose.layout)
            for frame in source:
                stage(frame)
        crops += recorder.crops
    return np.stack(crops) if crops else np.zeros((0, LANDMARK_SIZE, LANDMARK_SIZE, 3), np.uint8)


class _CropReader:
    """ONNX Runtime `CalibrationDataReader` over uint8 crops, one per batch."""

    def __init__(self, name: str, crops: np.ndarray) -> None:
        self.name, self.crops = name, crops
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        crop = next(self._iter, None)
        return None if crop is None else {self.name: (crop.astype(np.float32) / 255.0)[None]}

    def rewind(self) -> None:
        self._iter = iter(self.crops)


def output_convs(model: onnx.ModelProto) -> list[str]:
    """The convolutions whose results reach a graph output through no other convolution (the regression and
    heatmap heads): kept in float."""
    producer = {out: n for n in model.graph.node for out in n.output}
    heads: set[str] = set()
    stack, seen = [o.name for o in model.graph.output], set()
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        if node.op_type == "Conv":
            heads.add(node.name)
        else:
            stack.extend(node.input)
    return sorted(heads)


def quantize_landmarks(model_path: str | Path, crops: np.ndarray, settings: QuantizeSettings) -> onnx.ModelProto:
    """The Q/DQ `ModelProto` of a landmark network calibrated on `crops` (not yet written)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cpgait.calibration.qdq_rules import check_qdq_model

    with tempfile.TemporaryDirectory(prefix="cpgait-pose-quant-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(model_path), str(pre), skip_symbolic_shape=True)
        prepared = onnx.load(str(pre))
        excluded = output_convs(prepared)
        quantize_qdq(
            pre,
            out,
            _CropReader(prepared.graph.input[0].name, crops),
            settings,
            ["Conv"],
            excluded,
            unquantized_outputs=["Conv"] if settings.recipe == "tensorrt" else [],
        )
        qdq = onnx.load(str(out))
    entry = qdq.metadata_props.add()
    entry.key = QUANT_METADATA_KEY
    entry.value = json.dumps(
        {
            "method": settings.method,
            "crops": len(crops),
            "float_nodes": excluded,
            "per_channel": settings.per_channel,
            "recipe": settings.recipe,
        }
    )
    report = check_qdq_model(qdq)
    if not report.ok:
        raise CpgaitError("the quantized pose model breaks TensorRT's Q/DQ rules: " + "; ".join(report.violations[:5]))
    return qdq


@dataclass(frozen=True)
class PoseCalibrationResult:
    """What `calibrate_pose` did: the output (None when the gate failed) and the gate report."""

    path: Path | None
    gate: KeypointGateReport
    calibration_crops: int


def calibrate_pose(
    pose_name: str,
    videos: Sequence[str | Path],
    out: str | Path,
    settings: QuantizeSettings = QuantizeSettings(),
    thresholds: KeypointThresholds = KeypointThresholds(),
    overwrite: bool = False,
    max_calibration_crops: int = 200,
) -> PoseCalibrationResult:
    """`cpgait calibrate POSE --frames VIDEO...`: quantize the landmark network of `pose_name` on walker crops of
    `videos` (alternate crops), gate it on the others, and write `out` only when the gate passes."""
    import onnx

    from cpgait.runtime.pose.interface import asset

    out = Path(out)
    if not out.name.endswith(".onnx"):
        raise CpgaitError(f"{out}: the output must end in .onnx")
    require_writable(out, overwrite)
    crops = walker_crops(videos, pose_name)
    if len(crops) < MIN_CROPS:
        raise CpgaitError(
            f"--frames: the walker was measured on {len(crops)} frames; expected at least {MIN_CROPS} (a clip of "
            "someone walking in side view)"
        )
    calibration, held = crops[0::2][:max_calibration_crops], crops[1::2]
    model_path = asset(POSE_LANDMARK_MODELS[pose_name])
    qdq = quantize_landmarks(model_path, calibration, settings)
    report = keypoint_gate(OnnxRuntimeRunner(model_path), OnnxRuntimeRunner(qdq.SerializeToString()), held, thresholds)
    written = None
    if report.ok:
        with atomic_output(out, overwrite=True) as tmp:  # `overwrite` was checked before any work
            onnx.save(qdq, str(tmp))
        written = out
    return PoseCalibrationResult(written, report, len(calibration))
