"""`cpgait-bench pose`: every pose option side by side on one clip, against the FP32 full BlazePose model.

A pose option is accepted for the kiosk only with its effect on what the kiosk measures. For each option (a name of
`POSE_MODELS`, or BlazePose with another landmark file such as an INT8 one: `--landmarks FILE`), in one run:
1. speed: the subject stage alone on each decoded frame (person search + pose model per frame, ms, and the
   frames/s bound that makes), measured as `cpgait-bench pipeline` measures its pose bound, with the thread budget
   of `cpgait run`;
2. the walker's keypoint sequence through the stages of `cpgait pose` (`record_sequence`): frames measured, and the
   hips' travel across the picture (the walker crosses it right to left; the man on the roof does not);
3. keypoint error against the reference on the frames both measured, over the joints the feet models read
   (`coco17_feet`; COCO-17 for an option without feet), in image pixels and in % of the walker's height;
4. the gait features of the whole walk (`compute_features`): cadence and knee range of motion (mean of the
   two sides), and whether they stay within `CADENCE_TOL` and `KNEE_ROM_TOL` of the reference's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError, refuse_overwrite

if TYPE_CHECKING:
    from cpgait.runtime.pose.interface import PoseModel

REFERENCE = "blazepose"
CADENCE_TOL = 2.0  # steps/min
KNEE_ROM_TOL = 3.0  # degrees
MIN_TRACKED = 0.9  # of the reference's measured frames


def _option(spec: str, backend: str, threads_options: dict[str, object]) -> tuple[str, Callable[[], PoseModel]]:
    """(label, builder) of a pose option: a catalog name, or `blazepose+FILE` / `blazepose-lite+FILE` for BlazePose
    with another landmark model file."""
    from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
    from cpgait.runtime.pose.blazepose import BlazePose
    from cpgait.runtime.pose.catalog import POSE_MODELS, load_pose_model

    if spec in POSE_MODELS:
        return spec, lambda: load_pose_model(spec, backend, models=None, **threads_options)
    path = Path(spec)
    if not path.is_file() or path.suffix != ".onnx":
        raise CpgaitError(
            f"--pose {spec!r}: expected one of {', '.join(POSE_MODELS)} or a BlazePose landmark model (.onnx file)"
        )

    def build() -> PoseModel:
        return BlazePose(
            lambda p: RUNTIME_BACKENDS.make_runner(p, backend, **threads_options), landmarks=path, name=path.stem
        )

    return path.stem, build


def _walk(video: str, pose: PoseModel) -> dict:
    from cpgait.runtime.app.record import record_sequence
    from cpgait.runtime.core.layouts import to_coco17
    from cpgait.runtime.gait.features import compute_features

    sequence, _ = record_sequence(video, pose)
    frame_index = sequence.frame_index
    assert frame_index is not None  # record_sequence numbers every row
    feats = compute_features(sequence.keypoints, sequence.layout, sequence.fps)
    kp, layout = to_coco17(sequence.keypoints, sequence.layout)
    measured = kp[..., 2].max(axis=1) > 0
    hips = np.nanmean(kp[measured][:, [11, 12], 0], axis=1)  # COCO-17 hips, x
    width = sequence.image_size[0]
    rom = [feats.scalar("knee_rom_left"), feats.scalar("knee_rom_right")]
    return {
        "frames": {int(n): kp[i] for i, n in enumerate(frame_index) if measured[i]},
        "layout": layout,
        "measured_frames": int(measured.sum()),
        "hip_travel_fraction": round(float((hips[:10].mean() - hips[-10:].mean()) / width), 3),
        "cadence": round(feats.scalar("cadence"), 2),
        "knee_rom": round(float(np.nanmean(rom)), 2),
    }


def _keypoint_error(ref: dict, test: dict) -> dict:
    """Error of `test` against `ref` on the frames and joints both measured (image px and % of walker height)."""
    common = sorted(set(ref["frames"]) & set(test["frames"]))
    joints = min(ref["frames"][common[0]].shape[0], test["frames"][common[0]].shape[0]) if common else 0
    errors, relative = [], []
    for n in common:
        a, b = ref["frames"][n][:joints], test["frames"][n][:joints]
        both = (a[:, 2] > 0) & (b[:, 2] > 0)
        if not both.any():
            continue
        height = float(np.nanmax(a[both, 1]) - np.nanmin(a[both, 1]))
        d = np.hypot(*(a[both, :2] - b[both, :2]).T)
        errors.append(d)
        relative.append(100 * d / max(height, 1.0))
    if not errors:
        return {"frames": 0, "median_px": None, "p95_px": None, "median_pct_height": None}
    e, r = np.concatenate(errors), np.concatenate(relative)
    return {
        "frames": len(common),
        "joints": joints,
        "median_px": round(float(np.median(e)), 2),
        "p95_px": round(float(np.percentile(e, 95)), 2),
        "median_pct_height": round(float(np.median(r)), 2),
    }


def run_pose_bench(
    video: str,
    options: list[str],
    backend: str = "ort-cpu",
    pose_threads: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """Every option of `options` (the reference first, added when missing) on `video`; returns the report."""
    from cpgait.bench.environment import CpuMeter, describe
    from cpgait.bench.pipeline import _pose_only_pass
    from cpgait.runtime.live.thread_budget import ThreadBudget

    if not Path(video).is_file():
        raise CpgaitError(f"{video}: no such video file")
    budget = ThreadBudget.auto(pose=pose_threads)
    budget.apply_opencv()
    threads_options = budget.runner_options(backend, "pose")
    specs = [REFERENCE] + [o for o in options if o != REFERENCE]
    built = [_option(s, backend, threads_options) for s in specs]  # every name checked before any measuring
    environment = describe()
    rows, walks = [], {}
    with CpuMeter() as cpu:
        for label, build in built:
            progress(f"{label}: pose alone over the frames, then the walker's sequence")
            stats, bound_fps, frames = _pose_only_pass(video, build(), None)
            walks[label] = _walk(video, build())
            walk = walks[label]
            row = {
                "pose": label,
                "pose_ms_per_frame": round(stats.mean_ms, 3),
                "pose_p50_ms": round(stats.p50_ms, 3),
                "bound_fps": round(bound_fps, 2),
                "frames": frames,
                **{k: v for k, v in walk.items() if k != "frames"},
            }
            rows.append(row)
    ref = walks[REFERENCE]
    for row in rows:
        walk = walks[row["pose"]]
        row["keypoint_error"] = _keypoint_error(ref, walk)
        row["cadence_diff"] = round(abs(walk["cadence"] - ref["cadence"]), 2)
        row["knee_rom_diff"] = round(abs(walk["knee_rom"] - ref["knee_rom"]), 2)
        row["tracked"] = bool(
            walk["measured_frames"] >= MIN_TRACKED * ref["measured_frames"] and walk["hip_travel_fraction"] > 0.5
        )
        row["accepted"] = bool(
            row["tracked"] and row["cadence_diff"] <= CADENCE_TOL and row["knee_rom_diff"] <= KNEE_ROM_TOL
        )
    return {
        "kind": "pose",
        "environment": environment,
        "settings": {"video": video, "backend": backend, "thread_budget": budget.describe(), "reference": REFERENCE},
        "acceptance": {
            "cadence_steps_per_min": CADENCE_TOL,
            "knee_rom_deg": KNEE_ROM_TOL,
            "tracked_fraction": MIN_TRACKED,
        },
        "cpu": vars(cpu.result),
        "options": rows,
    }


def to_markdown(report: dict) -> str:
    from cpgait.bench.report import _machine

    env, acc = report["environment"], report["acceptance"]
    lines = [
        f"`{env['command']}`",
        "",
        f"Machine: {_machine(report)}. Date: {env['date']}.",
        "",
        f"Method: `cpgait.bench.pose` on {report['settings']['video']}, {report['settings']['thread_budget']}; "
        f"reference {report['settings']['reference']} (FP32, full landmark model). Accepted = walker tracked "
        f"(>= {100 * acc['tracked_fraction']:.0f} % of the reference's frames, crossing the picture), cadence "
        f"within {acc['cadence_steps_per_min']} steps/min and knee ROM within {acc['knee_rom_deg']} deg.",
        "",
        "| pose | pose ms/frame (mean) | bound frames/s | frames measured | keypoint error median / p95 px "
        "(% height) | cadence steps/min (diff) | knee ROM deg (diff) | accepted |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["options"]:
        k = r["keypoint_error"]
        err = "-" if k["median_px"] is None else f"{k['median_px']} / {k['p95_px']} ({k['median_pct_height']} %)"
        lines.append(
            f"| {r['pose']} | {r['pose_ms_per_frame']:.2f} | {r['bound_fps']:.1f} | {r['measured_frames']} | {err} | "
            f"{r['cadence']:.1f} ({r['cadence_diff']:.1f}) | {r['knee_rom']:.1f} ({r['knee_rom_diff']:.1f}) | "
            f"{'yes' if r['accepted'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def write(report: dict, json_path: Path | None, md_path: Path | None, overwrite: bool) -> None:
    for path, text in ((json_path, json.dumps(report, indent=1) + "\n"), (md_path, to_markdown(report))):
        if path is not None:
            refuse_overwrite(path, overwrite)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
