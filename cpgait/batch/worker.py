"""One pose worker of `cpgait batch`: the pose model loaded once, then `cpgait run`'s loop per recording.

Each recording goes once through `run_live` (capture -> pose -> subject -> gait features -> classifier, the
kiosk's code) with a `SequenceCollector` on its reports, so one pass yields both `cpgait run`'s events and
`cpgait pose`'s sequence.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.app.record import SequenceCollector
from cpgait.runtime.app.run import RunOptions, run_live, summary_json
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.pose.catalog import load_pose_model

from .inputs import BatchItem
from .store import EVENTS, FAILED, NO_SUBJECT, OK, SEQUENCE, ResultStore


@dataclass(frozen=True)
class BatchSettings:
    """What every worker runs: the classifier, the pose model, their backend, the classification stride and the
    intra-op threads of each worker's pose networks (one per CPU it holds)."""

    model: str
    pose: str = "blazepose"
    backend: str = "ort-cpu"
    stride: int | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if not Path(self.model).is_file():
            raise CpgaitError(f"{self.model}: no such ONNX model file")
        RUNTIME_BACKENDS.get(self.backend)  # an unknown name fails here
        if self.stride is not None and self.stride < 1:
            raise CpgaitError(f"stride is {self.stride}; expected at least 1")
        if self.threads < 1:
            raise CpgaitError(f"threads per worker is {self.threads}; expected at least 1")

    def answer_settings(self) -> dict:
        """The settings that change a result (part of its key); threads do not."""
        return {"pose": self.pose, "backend": self.backend, "stride": self.stride}


class VideoWorker:
    """Holds the loaded pose model; `process` runs one recording and publishes its result folder."""

    def __init__(self, settings: BatchSettings, results: str) -> None:
        self.settings = settings
        self.store = ResultStore(results)
        threads = {"threads": settings.threads} if RUNTIME_BACKENDS.get(settings.backend).threaded else {}
        self.pose = load_pose_model(settings.pose, settings.backend, models=None, **threads)
        for runner in self.pose.runners():
            runner.activate()

    def process(self, item: BatchItem, key: str, attempt: int) -> dict:
        """Run `item`; its result (also written to its folder) says ok, no_subject or failed with the reason."""
        work = self.store.new_work_folder(key)
        options = RunOptions(
            source=item.path,
            model=self.settings.model,
            pose=self.settings.pose,
            backend=self.settings.backend,
            events=str(work / EVENTS),
            stride=self.settings.stride,
            fps=item.fps,
        )
        collect = SequenceCollector(item.path, self.pose.name, self.pose.layout)
        result = {**asdict(item), "key": key, "attempts": attempt, "status": FAILED, "error": ""}
        t0 = time.perf_counter()
        try:
            summary, contract = run_live(
                options, on_report=lambda report, _: collect(report), pose=self.pose, pictures=False
            )
        except CpgaitError as exc:  # unreadable video, bad model: this video fails, the batch goes on
            result["error"] = str(exc)
        else:
            result.update(summary=summary_json(summary, contract), frames=summary.frames, windows=summary.windows)
            try:
                collect.sequence(summary).save(work / SEQUENCE)
                result["status"] = OK
            except CpgaitError as exc:  # `cpgait pose`'s answer for a recording without a walker
                result.update(status=NO_SUBJECT, error=str(exc))
        result["wall_s"] = round(time.perf_counter() - t0, 3)
        result["folder"] = str(self.store.publish(work, item.path, key, result))
        return result
