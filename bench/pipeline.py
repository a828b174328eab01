"""`cpgait-bench pipeline`: per-stage and end-to-end latency of the live loop, its frames/s, dropped frames and CPU
use, next to the pose model's own throughput bound measured in the same run.

Passes over the same frames, back to back:
1. pose only, before and after pass 2: each frame is decoded first (untimed), then the subject stage (person
   search, pose model, tracking) runs on it with nothing else running; a pass's bound is frames / (time in the
   person detector + the pose model), and the faster of the two passes is the bound (the stricter one on a shared
   machine whose load changes);
2. the loop exactly as `cpgait run` runs it (`cpgait.runtime.live.pipeline.run_live`: capture, pose + tracking and the
   temporal stage in threads, the overlay drawn but not written); stage times come from the pipeline's own
   per-frame timings, end-to-end latency is from the frame's capture to its result reaching the caller.
Both passes build their models the way `cpgait run` does, with its thread budget
(`cpgait.runtime.live.thread_budget`: the pose networks get all cores on 1-2 cores, else all but one, unless
`--pose-threads` says otherwise).
Next to the stages' wall times, the report's `cpu_time` holds the CPU time of the thread that ran the decode, the
person search, the pose call and the classifier: wall time well above CPU time is time spent waiting for a core.
A pose model that cannot feed the classifier (MoveNet has no heel and toe points) is refused before any pass.
Frames/s is the steady state after the first `WARMUP_FRAMES` results (the first calls pay for session set-up).
The loop reaching the bound means everything that is not pose inference is overlapped or negligible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.bench.environment import CpuMeter, describe
from cpgait.bench.results import SCHEMA_VERSION, StageResult
from cpgait.bench.timing import LatencyStats, percentiles_ms
from cpgait.errors import CpgaitError
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.live.pipeline import TimingLog
from cpgait.runtime.live.thread_budget import ThreadBudget

if TYPE_CHECKING:
    from cpgait.runtime.live.pipeline import FrameReport
    from cpgait.runtime.pose.interface import PoseModel

# Per-frame stages of the pipeline's timings, in pipeline order, from the loop's own list ("pose" is the sum of the
# pose_* stages and "latency" the end-to-end figure, so neither is a stage of its own here; `*_cpu` are thread CPU
# times of the stages in `CPU_STAGES`)
STAGES = tuple(s for s in TimingLog.STAGES if s not in ("pose", "latency") and not s.endswith("_cpu"))
CPU_STAGES = tuple(s.removesuffix("_cpu") for s in TimingLog.STAGES if s.endswith("_cpu"))
WARMUP_FRAMES = 5  # results left out of the steady-state frames/s
WARMUP_CALLS = 3  # untimed pose calls on the first frame before the pose-only pass


def _classifier_path(model: str) -> Path:
    if model == "reference":
        from cpgait.bench.backends import find_model_files

        path = find_model_files("reference").onnx
        if path is None:
            raise CpgaitError("the reference ONNX model is not built (`make model` makes it)")
        return path
    path = Path(model)
    if not path.is_file():
        raise CpgaitError(f"--model {path}: no such model file; expected an ONNX classifier (.onnx) or `reference`")
    if path.suffix != ".onnx":
        raise CpgaitError(f"--model {path}: expected an ONNX classifier (.onnx); export a checkpoint first")
    return path


def _pose_only_pass(source: str, pose: PoseModel, frames: int | None) -> tuple[LatencyStats, float, int]:
    """Time the subject stage alone on each decoded frame; returns the stats of person-search + pose time per frame
    (after warming the pose model up on the first frame), the bound in frames/s and the frame count."""
    from cpgait.runtime.live.capture import open_source
    from cpgait.runtime.live.subject import SubjectPose

    per_frame: list[int] = []
    with open_source(source, paced=False, max_frames=frames) as src:
        stage = SubjectPose(pose, src.size, pose.layout)
        for frame in src:
            if not per_frame:
                for _ in range(WARMUP_CALLS):
                    pose.reset()
                    pose(frame.image)
                pose.reset()
            timings = stage(frame).timings_ns
            per_frame.append(timings.get("detector", 0) + timings.get("pose", 0))
    ns = np.asarray(per_frame, dtype=np.int64)
    if ns.size == 0 or ns.sum() <= 0:
        raise CpgaitError(f"{source}: delivered no frames")
    return LatencyStats.from_ns(ns), ns.size / (ns.sum() / 1e9), int(ns.size)


def run_pipeline_bench(
    source: str,
    model: str,
    pose: str = "blazepose",
    backend: str = "ort-cpu",
    live: bool = False,
    frames: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
    pose_threads: int | None = None,
    pose_models: str | None = None,
) -> dict:
    """Both passes over SOURCE; returns the report (schema kind "pipeline")."""
    if backend not in RUNTIME_BACKENDS:
        raise CpgaitError(f"--backend {backend!r}; the pipeline runs on one of {', '.join(RUNTIME_BACKENDS.names())}")
    if frames is not None and frames < 1:
        raise CpgaitError(f"--frames {frames}: expected at least 1")
    classifier = _classifier_path(model)
    from cpgait.runtime.app.run import RunOptions, run_live
    from cpgait.runtime.core.contract import ModelContract
    from cpgait.runtime.live.pipeline import layout_converter
    from cpgait.runtime.pose.catalog import load_pose_model

    budget = ThreadBudget.auto(pose=pose_threads)
    layout = load_pose_model(pose, backend).layout  # builds no session: a pose model loads its networks on first use
    layout_converter(layout, ModelContract.from_onnx(classifier), f"--pose {pose} (layout {layout}) for {classifier}")
    budget.apply_opencv()
    environment = describe()

    progress(f"pass 1/3: {pose} alone over the frames of {source}")
    pose_options = budget.runner_options(backend, "pose")
    before = _pose_only_pass(source, load_pose_model(pose, backend, models=pose_models, **pose_options), frames)

    progress(f"pass 2/3: the loop of `cpgait run` ({'live: paced at the source fps' if live else 'every frame'})")
    rows: list[dict[str, int]] = []
    arrivals: list[int] = []

    def record(report: FrameReport, picture: np.ndarray | None) -> None:
        arrivals.append(time.perf_counter_ns())
        rows.append(dict(report.timings_ns))

    options = RunOptions(
        source=str(source),
        model=str(classifier),
        pose=pose,
        backend=backend,
        pose_models=pose_models,
        paced=live,
        max_frames=frames,
        pose_threads=budget.pose,
    )
    with CpuMeter() as cpu:
        summary, _ = run_live(options, on_report=record)
    if not rows:
        raise CpgaitError(f"{source}: the pipeline produced no frame")
    progress(f"pass 3/3: {pose} alone again")
    after = _pose_only_pass(source, load_pose_model(pose, backend, models=pose_models, **pose_options), frames)
    pose_stats, bound_fps, pose_frames = max(before, after, key=lambda p: p[1])

    latency_ms = np.array([r["latency"] for r in rows], dtype=np.float64) / 1e6
    fps = _steady_fps(arrivals, summary.wall_s)
    return {
        "schema": SCHEMA_VERSION,
        "kind": "pipeline",
        "environment": environment,
        "settings": {
            "source": str(source),
            "model": str(classifier),
            "pose": pose,
            "backend": backend,
            "live": live,
            "frames": frames,
            "threads": budget.pose,  # intra-op threads of the pose networks (the thread budget's, as `cpgait run`)
            "thread_budget": budget.describe(),
            "pose_models": pose_models,  # a folder of pose networks instead of the shipped files (None: shipped)
            "warmup_frames": WARMUP_FRAMES,
            "windows_classified": summary.windows,
            "statuses": summary.statuses,
        },
        "implementation": "cpgait.runtime.live.pipeline.run_live, the loop of `cpgait run` "
        "(capture, pose + tracking and "
        "temporal stages in threads; overlay drawn, not written); stage times from its own "
        "per-frame timings",
        "cpu": vars(cpu.result),
        "stages": [s.to_dict() for s in _stage_results(rows)],
        "cpu_time": _cpu_time(rows),
        "end_to_end": {
            "latency": vars(LatencyStats.from_ms(latency_ms)),
            "percentiles_ms": percentiles_ms(latency_ms),
            "fps": round(fps, 2),
            "frames": len(rows),
            "dropped": max(0, summary.capture.frames_read - len(rows)),  # read from the source, never reported
            "wall_s": round(summary.wall_s, 3),
        },
        "pose_bound": {
            "latency": vars(pose_stats),
            "fps": round(bound_fps, 2),
            "frames": pose_frames,
            "passes_fps": [round(before[1], 2), round(after[1], 2)],
        },
        "efficiency": round(fps / bound_fps, 3),
    }


def _steady_fps(arrivals: list[int], wall_s: float) -> float:
    """Results per second after the first WARMUP_FRAMES results (over the whole run when it is shorter)."""
    if len(arrivals) > WARMUP_FRAMES + 1:
        span = (arrivals[-1] - arrivals[WARMUP_FRAMES]) / 1e9
        if span > 0:
            return (len(arrivals) - 1 - WARMUP_FRAMES) / span
    return len(arrivals) / wall_s if wall_s > 0 else 0.0


def _cpu_time(rows: list[dict[str, int]]) -> list[dict[str, float | int | str]]:
    """Wall and thread CPU time (p50 and mean ms, over the frames where the stage ran) of `CPU_STAGES`."""
    out: list[dict[str, float | int | str]] = []
    for stage in CPU_STAGES:
        wall = np.array([r.get(stage, 0) for r in rows], dtype=np.float64) / 1e6
        cpu = np.array([r.get(f"{stage}_cpu", 0) for r in rows], dtype=np.float64) / 1e6
        ran = wall > 0
        if ran.any():
            out.append(
                {
                    "stage": stage,
                    "frames": int(ran.sum()),
                    "wall_p50_ms": round(float(np.median(wall[ran])), 4),
                    "cpu_p50_ms": round(float(np.median(cpu[ran])), 4),
                    "wall_mean_ms": round(float(wall[ran].mean()), 4),
                    "cpu_mean_ms": round(float(cpu[ran].mean()), 4),
                }
            )
    return out


def _stage_results(rows: list[dict[str, int]]) -> list[StageResult]:
    """Each stage's latency over the frames where it ran, its cost per frame and its share of all stage time."""
    table = {s: np.array([r.get(s, 0) for r in rows], dtype=np.float64) / 1e6 for s in STAGES}
    total = sum(v.sum() for v in table.values()) or 1.0
    out = []
    for stage, values in table.items():
        ran = values[values > 0]
        if ran.size == 0:
            continue
        out.append(
            StageResult(
                stage,
                LatencyStats.from_ms(ran),
                tuple(percentiles_ms(ran)),
                round(float(values.sum() / len(rows)), 4),
                round(float(values.sum() / total), 4),
            )
        )
    return out
