"""`cpgait-bench features`: what the live loop pays per frame for the gait features (numpy, one thread, one core).

The input is synthetic noisy walks (SYNTHETIC data from `cpgait.training.synth`: jitter, dropped points, outliers,
left/right swaps), cut to the frames with the child in view and streamed frame by frame into `IncrementalFeatures`.
After one untimed window of warm-up, every frame is timed:

- push: `IncrementalFeatures.push` alone (the per-frame update; every `BLOCK` frames it finalises a block);
- push + features: the update plus `features()` (series and scalars of the current window);
- push + inputs: the update plus `inputs()` (the model's three input tensors), i.e. refreshing every frame;
- batch inputs: `window_inputs` on the same raw window (what the live loop would pay without the live form).

Each sample is taken twice around the same call: wall time (`time.perf_counter_ns`) and the thread's CPU time
(`time.thread_time_ns`), which leaves out the time the process waited for a core -- on a machine shared with other
jobs the CPU time is the better estimate of the cost on an idle core. Statistics: `bench.timing.LatencyStats`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cpgait.bench.environment import cpu_model
from cpgait.bench.timing import LatencyStats
from cpgait.errors import CpgaitError, atomic_output
from cpgait.runtime.gait.features import SCALAR_NAMES, SERIES_NAMES, IncrementalFeatures, window_inputs

FORMAT = "cpgait.bench.features/1"
SYNTH_LEVEL = 1  # GMFCS II: a typical walker (the cost barely depends on the level)


@contextlib.contextmanager
def one_core() -> Iterator[int | None]:
    """Run the block on one CPU (the lowest the process may use) so the figures are single-core, then give the
    process its CPUs back; yields the CPU, or None where affinity is unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def stream(layout: str, fps: float, frames: int, seed: int) -> np.ndarray:
    """`frames` frames `[frames, V, 3]` of synthetic noisy walks back to back, each cut to the frames where the
    child is wholly in view (a window with nobody in it has no features: that is an error, not a timing)."""
    from cpgait.training.synth import synthesize

    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < frames:
        seq, truth = synthesize(SYNTH_LEVEL, rng, clean=False, fps=fps, layout=layout, duration_s=10.0)
        parts.append(seq.keypoints[np.asarray(truth["in_frame"], dtype=bool)])
        total += len(parts[-1])
    return np.concatenate(parts)[:frames]


class Samples:
    """Wall and CPU nanoseconds of the calls of one kind."""

    def __init__(self) -> None:
        self.wall: list[int] = []
        self.cpu: list[int] = []

    def add(self, wall: int, cpu: int) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)


def _timed(call) -> tuple[int, int]:
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    call()
    return time.perf_counter_ns() - wall, time.thread_time_ns() - cpu


def run_features_bench(window: int, fps: float, layout: str, frames: int, seed: int) -> dict:
    """Time the live form frame by frame over `frames` frames after a `window`-frame warm-up (see module doc)."""
    if frames < 10:
        raise CpgaitError(f"--frames {frames}: expected at least 10 timed frames")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    kp = stream(layout, fps, window + frames, seed)
    samples = {name: Samples() for name in ("push", "push + features", "push + inputs", "batch inputs")}
    with one_core() as cpu:
        for refresh in ("features", "inputs"):
            live = IncrementalFeatures(layout, fps, window)
            for frame in kp[:window]:
                live.push(frame)
            for t in range(window, len(kp)):
                push = _timed(lambda: live.push(kp[t]))
                if refresh == "features":
                    samples["push"].add(*push)
                    rest = _timed(live.features)
                    samples["push + features"].add(push[0] + rest[0], push[1] + rest[1])
                else:
                    rest = _timed(lambda: live.inputs(SERIES_NAMES, SCALAR_NAMES))
                    samples["push + inputs"].add(push[0] + rest[0], push[1] + rest[1])
        for t in range(window, len(kp)):
            samples["batch inputs"].add(
                *_timed(lambda: window_inputs(kp[t + 1 - window : t + 1], layout, fps, SERIES_NAMES, SCALAR_NAMES))
            )

    def summary(values: list[int]) -> dict:
        s = LatencyStats.from_ns(np.array(values))
        return {
            "p50": s.p50_ms * 1e3,
            "p95": s.p95_ms * 1e3,
            "p99": s.p99_ms * 1e3,
            "mean": s.mean_ms * 1e3,
            "min": s.min_ms * 1e3,
            "n": s.n,
        }

    return {
        "format": FORMAT,
        "data": f"SYNTHETIC noisy walk (cpgait synth, GMFCS {'I II III IV'.split()[SYNTH_LEVEL]}, seed {seed})",
        "window": window,
        "fps": fps,
        "layout": layout,
        "frames_timed": frames,
        "machine": {
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "pinned_cpu": cpu,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "blas_threads": {
                k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            },
        },
        "wall_us": {name: summary(s.wall) for name, s in samples.items()},
        "cpu_us": {name: summary(s.cpu) for name, s in samples.items()},
    }


def render(report: dict) -> str:
    """The report as a plain-text table."""
    m = report["machine"]
    lines = [
        f"gait features, per frame: T={report['window']} at {report['fps']:g} fps, {report['layout']}, "
        f"{report['frames_timed']} frames timed ({report['data']})",
        f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, pinned to CPU {m['pinned_cpu']}, numpy "
        f"{m['numpy']}, load average before/after {_load(m['load_average_before'])} / "
        f"{_load(m['load_average_after'])}",
        f"{'per frame, µs':18}{'wall p50':>10}{'p95':>8}{'p99':>8}{'mean':>8}{'CPU p50':>10}{'p95':>8}{'p99':>8}"
        f"{'mean':>8}{'min':>8}",
    ]
    for name, wall in report["wall_us"].items():
        cpu = report["cpu_us"][name]
        lines.append(
            f"{name:18}{wall['p50']:10.1f}{wall['p95']:8.0f}{wall['p99']:8.0f}{wall['mean']:8.0f}"
            f"{cpu['p50']:10.1f}{cpu['p95']:8.0f}{cpu['p99']:8.0f}{cpu['mean']:8.0f}{cpu['min']:8.1f}"
        )
    return "\n".join(lines)


def _load(load: list[float] | tuple[float, ...] | None) -> str:
    return "n/a" if load is None else f"{load[0]:.2f}"


def write_json(report: dict, path: Path, overwrite: bool) -> None:
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
