"""`cpgait batch` on Ray: plan (hash, skip what is finished), a pool of pose-worker actors, bounded retries of a
video whose worker died, the summary table and the final report.

Ray Core actors, one per worker: each loads the pose model once and then takes one video at a time, so a long video
never holds up the others and a worker that dies (a segfault in a decoder, the out-of-memory killer) takes only its
own video with it. That video is retried on a fresh worker up to `retries` more times, then recorded as failed
with the reason. An error the pipeline reports itself (an unreadable file, no walker) is that video's answer and
is not retried.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import cv2

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.trt_engine import file_sha256
from cpgait.runtime.core.atomic import write_atomic
from cpgait.runtime.live.capture import SourceSpec, open_reader

from .inputs import BatchItem, read_inputs
from .store import FAILED, NO_SUBJECT, OK, ResultStore, result_key
from .worker import BatchSettings, VideoWorker

SUMMARY = "summary.csv"
STAGES = ("decode", "pose", "tracking", "features", "classifier")  # per-stage totals in the final report


@dataclass(frozen=True)
class PoolSettings:
    """Where and how wide: `address` None starts a local Ray with this machine's cores, else "auto" or
    "ray://host:10001" joins a cluster; `workers` actors of `cpus`/`gpus` each (default: one per CPU)."""

    address: str | None = None
    workers: int | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 2

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise CpgaitError(f"workers is {self.workers}; expected at least 1")
        if self.cpus <= 0 or self.gpus < 0:
            raise CpgaitError(f"cpus per worker {self.cpus}, gpus per worker {self.gpus}; expected > 0 and >= 0")
        if self.retries < 0:
            raise CpgaitError(f"retries is {self.retries}; expected 0 or more")


class Progress(Protocol):
    """Told the work ahead once, then each finished video and its frames (the CLI draws bars from it)."""

    def start(self, videos: int, frames: int) -> None: ...

    def advance(self, videos: int, frames: int) -> None: ...


@dataclass
class BatchReport:
    """What one `cpgait batch` did: rows of the summary table, and this run's work (skipped = already done)."""

    rows: list[dict]
    skipped: int
    processed: int
    frames: int
    wall_s: float
    workers: int
    stage_s: dict[str, float] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    def format(self) -> str:
        lines = [
            f"{len(self.rows)} videos: {self.count(OK)} ok, {self.count(NO_SUBJECT)} without a walker, "
            f"{self.count(FAILED)} failed; {self.skipped} already done, {self.processed} run now on "
            f"{self.workers} worker(s)",
        ]
        if self.processed:
            fps = self.frames / self.wall_s if self.wall_s > 0 else 0.0
            lines.append(
                f"{self.frames} frames in {self.wall_s:.1f} s = {fps:.1f} frames/s overall, "
                f"{60 * self.processed / self.wall_s:.1f} videos/min"
            )
            lines.append(
                "stage time, summed over workers: " + ", ".join(f"{s} {t:.1f} s" for s, t in self.stage_s.items())
            )
        for row in self.rows:
            if row["status"] == FAILED:
                error = row["error"]
                lines.append(f"failed: {error if error.startswith(row['path']) else row['path'] + ': ' + error}")
        return "\n".join(lines)


def _row(result: dict, folder: Path | None) -> dict:
    session = (result.get("summary") or {}).get("session") or {}
    return {
        "path": result["path"],
        "subject": result.get("subject", ""),
        "label": result.get("label", ""),
        "fps": result.get("fps") or "",
        "status": result["status"],
        "error": result.get("error", ""),
        "attempts": result.get("attempts", 0),
        "key": result["key"],
        "folder": "" if folder is None else str(folder),
        "frames": result.get("frames", 0),
        "windows": result.get("windows", 0),
        "class": session.get("class") or "",
        "confidence": "" if session.get("confidence") is None else session["confidence"],
        "probabilities": "" if not session.get("probabilities") else session["probabilities"],
    }


def _stage_seconds(result: dict) -> dict[str, float]:
    timings = (result.get("summary") or {}).get("timings_ms", {})
    return {s: timings[s]["mean"] * timings[s]["frames"] / 1e3 for s in STAGES if s in timings}


def write_table(rows: list[dict], path: Path) -> Path:
    """The archive's summary table (CSV, one row per video), replaced in one rename."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buffer.getvalue().encode("utf-8"))


def _frame_count(path: str) -> int:
    capture = cv2.VideoCapture(path)
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        capture.release()


def run_batch(
    source: str,
    settings: BatchSettings,
    out: str,
    pool: PoolSettings = PoolSettings(),
    progress: Progress | None = None,
    worker: type[VideoWorker] = VideoWorker,
) -> BatchReport:
    """Run every recording of SOURCE not yet finished in OUT and write OUT/summary.csv; `worker` is the actors'
    class (a test passes one that dies on purpose)."""
    items = read_inputs(source)
    store = ResultStore(out)
    store.root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(store.partial, ignore_errors=True)  # left by a run that was killed: never published
    model_hash = file_sha256(settings.model)
    rows: dict[str, dict] = {}
    todo: list[tuple[BatchItem, str]] = []
    for item in items:
        try:
            open_reader(SourceSpec("file", item.path)).release()  # the kiosk's own check and message
        except CpgaitError as exc:  # missing or undecodable: no worker needed to say so (checked again on a rerun)
            failed = {**asdict(item), "key": "", "attempts": 0, "status": FAILED, "error": str(exc)}
            rows[item.path] = _row(failed, None)
            continue
        key = result_key(file_sha256(item.path), model_hash, {**settings.answer_settings(), "fps": item.fps})
        done = store.finished(item.path, key)
        if done is not None:
            rows[item.path] = _row(done, store.folder(item.path, key))
        else:
            todo.append((item, key))
    skipped = sum(1 for r in rows.values() if r["status"] != FAILED)
    report = BatchReport([], skipped, len(todo), 0, 0.0, 0)
    if todo:
        if progress is not None:
            progress.start(len(todo), sum(_frame_count(item.path) for item, _ in todo))
        report = _run_pool(todo, settings, store, pool, progress, worker, rows, skipped)
    report.rows = [rows[item.path] for item in items]
    write_table(report.rows, store.root / SUMMARY)
    return report


def _run_pool(
    todo: list[tuple[BatchItem, str]],
    settings: BatchSettings,
    store: ResultStore,
    pool: PoolSettings,
    progress: Progress | None,
    worker: type[VideoWorker],
    rows: dict[str, dict],
    skipped: int,
) -> BatchReport:
    try:
        import ray
        from ray.exceptions import RayActorError, RayTaskError
    except ImportError:
        raise CpgaitError("cpgait batch runs on Ray, which is not installed: pip install 'cpgait[batch]'") from None

    started_here = not ray.is_initialized()
    if started_here:
        local = pool.address is None
        ray.init(
            address=pool.address,
            num_cpus=os.cpu_count() if local else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        available = ray.available_resources().get("CPU", 1.0)
        count = pool.workers or max(1, int(available // pool.cpus))
        count = min(count, len(todo))
        actor = ray.remote(worker).options(num_cpus=pool.cpus, num_gpus=pool.gpus, max_restarts=0)
        settings_ = replace(settings, threads=max(1, int(pool.cpus)))

        def start():
            return actor.remote(settings_, str(store.root))

        actors = [start() for _ in range(count)]
        queue = [(item, key, 1) for item, key in todo]
        running: dict = {}
        t0 = time.perf_counter()
        frames = 0
        stage_s = {s: 0.0 for s in STAGES}

        def submit(index: int) -> None:
            item, key, attempt = queue.pop(0)
            running[actors[index].process.remote(item, key, attempt)] = (index, item, key, attempt)

        for index in range(count):
            if queue:
                submit(index)
        while running:
            [ref], _ = ray.wait(list(running), num_returns=1)
            index, item, key, attempt = running.pop(ref)
            try:
                result = ray.get(ref)
            except (RayActorError, RayTaskError) as exc:  # the worker died or raised: retry on a fresh worker
                ray.kill(actors[index])
                actors[index] = start()
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if attempt <= pool.retries:
                    queue.insert(0, (item, key, attempt + 1))
                else:
                    failed = {
                        **asdict(item),
                        "key": key,
                        "attempts": attempt,
                        "status": FAILED,
                        "error": f"worker failed {attempt} time(s); last: {type(exc).__name__}: {reason}",
                    }
                    rows[item.path] = _row(failed, store.record_failure(item.path, key, failed))
                    if progress is not None:
                        progress.advance(1, 0)
            else:
                rows[item.path] = _row(result, Path(result["folder"]))
                frames += result.get("frames", 0)
                for stage, seconds in _stage_seconds(result).items():
                    stage_s[stage] += seconds
                if progress is not None:
                    progress.advance(1, result.get("frames", 0))
            if queue:
                submit(index)
        wall = time.perf_counter() - t0
        return BatchReport([], skipped, len(todo), frames, wall, count, stage_s)
    finally:
        if started_here:
            ray.shutdown()
