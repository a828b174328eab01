"""How the live loop's threads share the CPU cores, so that no stage is slowed by another's spinning threads.

The loop keeps three threads busy (decode, pose, temporal + drawing; `pipeline.py`), and each ONNX Runtime
session adds its own intra-op pool, which by default has one thread per core and spin-waits after every call. On a
small CPU that oversubscribes the cores: measured on the 2-core CI machine before this budget, the landmark crop took
0.5 ms alone but 5.7 ms p50 inside the loop and the classifier 4.5 ms alone but 12.5 ms inside it.

The automatic budget (`ThreadBudget.auto`, from the cores this process may run on):
- pose networks: all cores but one from 3 cores on (the pose stage bounds the loop; the spare core decodes, tracks,
  draws and classifies); on 1 or 2 cores all of them, because decoding and drawing need a few ms per frame, not a
  core: measured side by side on the 2-core CI machine (`bench/results/pipeline-threads1-cpu.md` vs
  `pipeline-cpu.md`), 1 pose thread made the loop slower, not faster;
- classifier: 1 intra-op thread (it runs once every `stride` frames on a tiny model; more threads cost more to
  wake than they save);
- OpenCV's own worker pool (resize, warpAffine, colour conversion inside the stages): 1, because the stages
  already run in parallel;
- FFmpeg's decoder threads (files and network streams, OpenCV's `CAP_PROP_N_THREADS`): 1, for the same reason —
  the decode stage has its own thread, and FFmpeg's frame threads would otherwise take one per core (measured on
  the demo clip: 1.27 s of CPU for 230 frames with 1 thread, 1.41 s with 2; the whole loop 3-6 % faster with 1,
  side by side, bench/results/decode-threads/);
- no spin-waiting: an idle intra-op thread sleeps instead of holding a core another stage needs.
Any part can be overridden (`cpgait run --pose-threads N`; the other fields by building a `ThreadBudget`).
Cameras (V4L2) and GStreamer pipelines decode as their drivers do (on a Jetson, in the hardware decoder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadBudget:
    """Intra-op threads of the pose networks and of the classifier, OpenCV's pool, FFmpeg's decoder threads, and
    whether idle ORT threads spin (see the module docstring)."""

    pose: int
    classifier: int = 1
    opencv: int = 1
    decode: int = 1
    spinning: bool = False

    def __post_init__(self) -> None:
        for name in ("pose", "classifier", "opencv", "decode"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise CpgaitError(f"{name} threads {value!r}; expected a whole number >= 1")

    @classmethod
    def auto(cls, cores: int | None = None, pose: int | None = None) -> ThreadBudget:
        """The budget for `cores` (default: this process's cores); `pose` overrides the pose networks' share."""
        cores = available_cores() if cores is None else cores
        if cores < 1:
            raise CpgaitError(f"cores {cores}; expected >= 1")
        return cls(pose=(cores if cores <= 2 else cores - 1) if pose is None else pose)

    def runner_options(self, backend: str, role: str) -> dict[str, object]:
        """The options for a runner of `role` ("pose" or "classifier") on `backend`: intra-op threads and spinning
        where the backend takes them (a GPU backend takes neither)."""
        if role not in ("pose", "classifier"):
            raise ValueError(f"thread budget role {role!r}; expected 'pose' or 'classifier'")
        if not RUNTIME_BACKENDS.get(backend).threaded:
            return {}
        return {"threads": getattr(self, role), "spinning": self.spinning}

    def apply_opencv(self) -> None:
        """Set OpenCV's worker pool (process-wide) to this budget's size."""
        import cv2

        cv2.setNumThreads(self.opencv)

    def describe(self) -> str:
        spin = "spinning" if self.spinning else "no spin-waiting"
        return (
            f"pose {self.pose}, classifier {self.classifier}, OpenCV {self.opencv}, decode {self.decode} thread(s); "
            f"{spin}"
        )
