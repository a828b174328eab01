"""Scaling of `cpgait batch` on one machine: the same clips through 1, then N pose workers in one Ray session.

The clips are cut from one video at evenly spaced starts (half size, as the batch test does). Each worker count
gets a fresh results folder, so every run does all the work; its wall time includes starting the workers and
loading their pose models, as a real batch's does. The worker counts run in `rounds` alternating rounds; each
round's speed-up is measured against that round's base, and the median over rounds is reported (one noisy round
on a shared machine does not decide the figure).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from cpgait.batch.scheduler import PoolSettings, run_batch
from cpgait.batch.store import OK
from cpgait.batch.worker import BatchSettings
from cpgait.bench.environment import describe
from cpgait.errors import CpgaitError, refuse_overwrite


def cut_clips(
    video: str, folder: Path, count: int, frames: int, span: tuple[int, int | None] = (0, None), scale: float = 0.5
) -> list[Path]:
    """`count` clips of `frames` frames from `video`'s frames span[0]..span[1], starts spread evenly over it."""
    capture = cv2.VideoCapture(video)
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(cv2.resize(image, None, fx=scale, fy=scale))
    capture.release()
    images = images[span[0] : span[1]]
    if len(images) < frames:
        raise CpgaitError(f"{video}: {len(images)} frames; a clip needs {frames}")
    room = len(images) - frames
    paths = []
    for i in range(count):
        start = round(i * room / max(1, count - 1))
        path = folder / f"clip{i:02d}-from{span[0] + start}.mp4"
        h, w = images[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (w, h))
        for image in images[start : start + frames]:
            writer.write(image)
        writer.release()
        paths.append(path)
    return paths


def run_batch_bench(
    video: str,
    model: str,
    workers: list[int],
    clips: int,
    frames: int,
    span: tuple[int, int | None],
    progress: Callable[[str], None],
    rounds: int = 3,
) -> dict:
    """Wall time, frames/s and videos/min of `cpgait batch` per worker count and round, the speed-up over the
    round's first count, and the medians over rounds (`summarise`)."""
    if rounds < 1:
        raise CpgaitError(f"rounds {rounds}; expected at least 1")
    import ray

    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        cut_clips(video, folder, clips, frames, span)
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            cpus = float(ray.cluster_resources().get("CPU", 0))
            for round_, count in ((r, c) for r in range(1, rounds + 1) for c in workers):
                progress(f"round {round_}/{rounds}: {count} worker(s) over {clips} clips ...")
                t0 = time.perf_counter()
                settings, pool = BatchSettings(model=model), PoolSettings(workers=count)
                report = run_batch(str(folder), settings, f"{tmp}/out{round_}-{count}", pool)
                wall = time.perf_counter() - t0
                ok = report.count(OK)
                if ok != clips:
                    raise CpgaitError(f"{clips - ok} clip(s) did not finish ok: {report.format()}")
                runs.append(
                    {
                        "round": round_,
                        "workers": count,
                        "videos": clips,
                        "frames": report.frames,
                        "wall_s": round(wall, 2),
                        "frames_per_s": round(report.frames / wall, 2),
                        "videos_per_min": round(60 * clips / wall, 2),
                        "stage_s": {k: round(v, 2) for k, v in report.stage_s.items()},
                    }
                )
        finally:
            ray.shutdown()
    return {
        "kind": "batch",
        "environment": describe(),
        "settings": {
            "video": video,
            "model": model,
            "clips": clips,
            "frames": frames,
            "span": list(span),
            "ray_cpus": cpus,
            "rounds": rounds,
        },
        "runs": runs,
        "summary": summarise(runs),
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Set each run's speed-up over its round's first worker count; per worker count, the median wall time,
    frames/s and speed-up over the rounds, and the lowest speed-up."""
    base: dict[int, float] = {}
    for run in runs:
        base.setdefault(run["round"], run["wall_s"])
        run["speedup"] = round(base[run["round"]] / run["wall_s"], 3)
    summary = []
    for count in dict.fromkeys(r["workers"] for r in runs):
        mine = [r for r in runs if r["workers"] == count]
        summary.append(
            {
                "workers": count,
                "rounds": len(mine),
                "wall_s": round(statistics.median(r["wall_s"] for r in mine), 2),
                "frames_per_s": round(statistics.median(r["frames_per_s"] for r in mine), 2),
                "speedup_median": round(statistics.median(r["speedup"] for r in mine), 3),
                "speedup_min": min(r["speedup"] for r in mine),
            }
        )
    return summary


def render(report: dict) -> str:
    """The markdown table, starting with the command that made it."""
    env = report["environment"]
    lines = [
        f"`{env.get('command', 'cpgait-bench batch')}`",
        "",
        f"{report['settings']['clips']} clips of {report['settings']['frames']} frames; Ray with "
        f"{report['settings']['ray_cpus']:g} CPUs; {env.get('cpu', {}).get('model', '')}",
        "",
        "| workers | rounds | median wall s | median frames/s | median speed-up | lowest speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        lines.append(
            f"| {s['workers']} | {s['rounds']} | {s['wall_s']} | {s['frames_per_s']} | {s['speedup_median']}x | "
            f"{s['speedup_min']}x |"
        )
    lines += [
        "",
        "Every run (speed-up against its round's first worker count):",
        "",
        "| round | workers | wall s | frames/s | videos/min | speed-up | pose s (summed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['round']} | {r['workers']} | {r['wall_s']} | {r['frames_per_s']} | {r['videos_per_min']} | "
            f"{r['speedup']}x | {r['stage_s'].get('pose', 0)} |"
        )
    return "\n".join(lines) + "\n"


def write(report: dict, json_out: Path | None, md: Path | None, overwrite: bool) -> None:
    for path in (json_out, md):
        if path is not None:
            refuse_overwrite(path, overwrite)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=1) + "\n")
    if md is not None:
        md.write_text(render(report))
