"""`cpgait-bench soak`: the kiosk loop of `cpgait run` for N minutes on an endless source, watched for leaks.

The source is a camera or stream as given, or a video file replayed endlessly at its fps (`--loop`): the loop
runs exactly as `cpgait run --loop` runs it (`run_live`, overlay drawn, events written to a temporary file). A
sampler thread records every `sample_s` seconds: the process's resident memory (RSS), open file descriptors,
threads, the items waiting in the pipeline's queues, frames and windows so far, frames the live reader skipped,
windows that could not be classified, and the capture-to-result latency of the frames reported since the last
sample (p50 / p95 / max).

Verdicts (after the warm-up: `WARMUP_SHARE` of the run, at least `WARMUP_MIN_S` and one sample), each with the
figures behind it:
- rss_flat: every RSS sample within +-`RSS_BAND` of their median;
- no_fd_growth / no_thread_growth: no sample above the first post-warm-up one;
- no_backlog: the last quarter's latency p95 at most `BACKLOG_FACTOR` x the first post-warm-up quarter's (a growing
  backlog shows as growing latency; the queues are bounded by construction, their depths are reported);
- no_dropped_windows: no window failed for any cause other than `no_leg_seen` (a child out of view). How many
  windows were classified depends on the clip and on the machine's speed (a window needs T frames of a tracked
  walker); each quarter's count is reported next to the verdict.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil

from cpgait.bench.environment import describe
from cpgait.bench.results import SCHEMA_VERSION
from cpgait.errors import CpgaitError

if TYPE_CHECKING:
    from cpgait.runtime.live.pipeline import FrameReport, Pipeline

WARMUP_SHARE = 0.2
WARMUP_MIN_S = 30.0  # and at least this long (sessions, arenas and the first tracked walker settle in)
RSS_BAND = 0.05
BACKLOG_FACTOR = 2.0


def run_soak(
    source: str,
    model: str,
    minutes: float,
    pose: str = "blazepose",
    backend: str = "ort-cpu",
    loop: bool = True,
    sample_s: float = 10.0,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """Run the loop for `minutes` and return the report (kind "soak")."""
    from cpgait.runtime.app.run import RunOptions, run_live
    from cpgait.runtime.live.capture import SourceSpec

    if not minutes > 0 or not sample_s > 0:
        raise CpgaitError(f"--minutes {minutes} / --sample {sample_s}: expected numbers > 0")
    if loop and SourceSpec.parse(source).kind != "file":
        loop = False  # a camera or stream is endless already
    environment = describe()
    proc = psutil.Process()
    samples: list[dict] = []
    latencies: list[float] = []  # ms, frames reported since the last sample
    counters = {"frames": 0, "windows": 0}
    lock = threading.Lock()
    started = threading.Event()
    holder: dict = {}
    done = threading.Event()

    def on_start(pipeline: Pipeline) -> None:
        holder["pipeline"] = pipeline
        holder["t0"] = time.monotonic()
        started.set()

    def on_report(report: FrameReport, _picture: object) -> None:
        with lock:
            latencies.append(report.timings_ns.get("latency", 0) / 1e6)
            counters["frames"] += 1
            counters["windows"] += report.window is not None

    def sample() -> None:
        pipeline = holder["pipeline"]
        with lock:
            lat = np.asarray(latencies, dtype=np.float64)
            latencies.clear()
            frames, windows = counters["frames"], counters["windows"]
        stats = pipeline.source.stats
        failures = dict(pipeline.session.failures_total) if pipeline.session is not None else {}
        samples.append(
            {
                "t_s": round(time.monotonic() - holder["t0"], 2),
                "rss_mb": round(proc.memory_info().rss / 2**20, 2),
                **_rss_parts(),
                "fds": proc.num_fds(),
                "threads": proc.num_threads(),
                "queues": pipeline.queue_depths(),
                "frames": frames,
                "windows": windows,
                "frames_skipped": stats.frames_skipped,
                "reconnects": stats.reconnects,
                "window_failures": failures,
                "latency_ms": None
                if lat.size == 0
                else {
                    "p50": round(float(np.percentile(lat, 50)), 2),
                    "p95": round(float(np.percentile(lat, 95)), 2),
                    "max": round(float(lat.max()), 2),
                    "frames": int(lat.size),
                },
            }
        )

    def sampler() -> None:
        while not started.wait(0.5):
            if done.is_set():  # the run ended (or failed) before its first frame
                return
        end = holder["t0"] + minutes * 60
        while not done.wait(min(sample_s, max(0.0, end - time.monotonic()))):
            sample()
            if time.monotonic() >= end:
                holder["pipeline"].stop()
                return

    with tempfile.TemporaryDirectory(prefix="cpgait-soak-") as tmp:
        options = RunOptions(
            source=source, model=model, pose=pose, backend=backend, loop=loop, events=str(Path(tmp) / "events.jsonl")
        )
        watcher = threading.Thread(target=sampler, name="cpgait-soak-sampler", daemon=True)
        watcher.start()
        progress(f"soak: {minutes:g} min of the `cpgait run` loop on {source}{' (looped)' if loop else ''}")
        try:
            summary, _ = run_live(options, on_report=on_report, on_start=on_start)
        finally:
            done.set()
            watcher.join()
        events_bytes = os.path.getsize(Path(tmp) / "events.jsonl")
    return {
        "schema": SCHEMA_VERSION,
        "kind": "soak",
        "environment": environment,
        "settings": {
            "source": source,
            "model": model,
            "pose": pose,
            "backend": backend,
            "loop": loop,
            "minutes": minutes,
            "sample_s": sample_s,
            "warmup_share": WARMUP_SHARE,
        },
        "summary": {
            "frames": summary.frames,
            "wall_s": round(summary.wall_s, 1),
            "fps": round(summary.fps, 2),
            "windows": summary.windows,
            "window_failures": summary.window_failures,
            "frames_skipped": summary.capture.frames_skipped,
            "reconnects": summary.capture.reconnects,
            "events_bytes": events_bytes,
        },
        "samples": samples,
        "verdicts": verdicts(samples),
    }


def _rss_parts() -> dict[str, float]:
    """Linux: the resident memory split into anonymous (heap, arenas: what a leak grows) and file-backed (mapped
    models and libraries, which the kernel may drop and fault back in) megabytes; nothing elsewhere."""
    parts = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                parts[f"{key[3:].lower()}_mb"] = round(int(value.split()[0]) / 1024, 2)
    except OSError:
        return {}
    return parts


def verdicts(samples: list[dict]) -> dict:
    """The soak's pass/fail checks with the figures behind them (module docstring)."""
    if len(samples) < 4:
        raise CpgaitError(f"{len(samples)} sample(s); a soak needs at least 4 (run longer or sample more often)")
    warm_s = max(WARMUP_SHARE * samples[-1]["t_s"], WARMUP_MIN_S)
    start = max(1, next((i for i, s in enumerate(samples) if s["t_s"] >= warm_s), len(samples) - 3))
    start = min(start, len(samples) - 3)  # at least three samples are judged
    steady = samples[start:]
    rss = np.array([s["rss_mb"] for s in steady])
    median = float(np.median(rss))
    deviation = float(np.max(np.abs(rss / median - 1)))
    fds = [s["fds"] for s in steady]
    threads = [s["threads"] for s in steady]
    quarter = max(1, len(steady) // 4)
    first, last = steady[:quarter], steady[-quarter:]

    def p95(rows: list[dict]) -> float:
        values = [r["latency_ms"]["p95"] for r in rows if r["latency_ms"] is not None]
        return float(np.median(values)) if values else float("nan")

    lat_first, lat_last = p95(first), p95(last)
    failures = steady[-1]["window_failures"]
    broken = {k: v for k, v in failures.items() if k != "no_leg_seen" and v}
    quarters = [steady[i * quarter : (i + 1) * quarter] for i in range(4) if steady[i * quarter : (i + 1) * quarter]]
    before = [samples[start - 1]] + steady
    windows_per_quarter = []
    for q in quarters:
        previous = before[before.index(q[0]) - 1]["windows"]
        windows_per_quarter.append(q[-1]["windows"] - previous)
    return {
        "warmup_s": round(samples[start]["t_s"], 1),
        "steady_samples": len(steady),
        "rss_flat": {"ok": deviation <= RSS_BAND, "median_mb": round(median, 1), "max_deviation": round(deviation, 4)},
        "no_fd_growth": {"ok": max(fds) <= fds[0], "first": fds[0], "max": max(fds), "last": fds[-1]},
        "no_thread_growth": {"ok": max(threads) <= threads[0], "first": threads[0], "max": max(threads)},
        "no_backlog": {
            "ok": bool(lat_last <= BACKLOG_FACTOR * lat_first),
            "latency_p95_first_quarter_ms": round(lat_first, 2),
            "latency_p95_last_quarter_ms": round(lat_last, 2),
            "max_queue_depths": {k: max(s["queues"][k] for s in steady) for k in steady[0]["queues"]},
        },
        "no_dropped_windows": {
            "ok": not broken,
            "failures": failures,
            "windows_per_quarter": windows_per_quarter,
        },
    }


def save_plot(report: dict, path: Path) -> None:
    """RSS, descriptors and threads, queue depths and latency over time, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["samples"]
    t = [x["t_s"] / 60 for x in s]
    fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True, constrained_layout=True)
    axes[0].plot(t, [x["rss_mb"] for x in s], label="RSS")
    for part in ("anon_mb", "file_mb"):
        if part in s[0]:
            axes[0].plot(t, [x[part] for x in s], label=f"of which {part[:-3]}")
    axes[0].set_ylabel("resident memory (MB)")
    axes[0].legend(fontsize="small")
    axes[1].plot(t, [x["fds"] for x in s], label="open file descriptors")
    axes[1].plot(t, [x["threads"] for x in s], label="threads")
    axes[1].legend(fontsize="small")
    for name in s[0]["queues"]:
        axes[2].plot(t, [x["queues"][name] for x in s], label=f"queue {name}")
    axes[2].set_ylabel("items waiting")
    axes[2].legend(fontsize="small")
    for key in ("p50", "p95", "max"):
        axes[3].plot(t, [x["latency_ms"][key] if x["latency_ms"] else np.nan for x in s], label=key)
    axes[3].set_ylabel("latency (ms)")
    axes[3].set_yscale("log")
    axes[3].legend(fontsize="small")
    axes[3].set_xlabel("minutes")
    warm = report["verdicts"]["warmup_s"] / 60
    for ax in axes:
        ax.axvline(warm, color="grey", linestyle=":")
        ax.grid(True, alpha=0.3)
    env = report["environment"]
    fig.suptitle(f"{env['command']}\n{env['cpu']['model']} x{env['cpu']['logical_cores']} · {env['date']}", fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
