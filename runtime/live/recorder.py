"""Recorder: keeps the raw keypoint windows the kiosk classifies, so a site can calibrate INT8 on its own data.

Each window is saved as an ordinary sequence file (`cpgait.sequence/1`, label unknown, keypoints only: no image
leaves the kiosk), so `cpgait calibrate model.onnx --data FOLDER` reads the folder as it is. The folder is bounded:
once it holds `max_files` files or `max_bytes` bytes (counting what was there before a restart) the recorder
stops saving: `full` turns True and calls return None.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.sequence import KeypointSequence

PREFIX = "window-"


@dataclass(frozen=True)
class RecorderLimits:
    """Upper bounds of one recording folder."""

    max_files: int = 2000
    max_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        if self.max_files < 1 or self.max_bytes < 1:
            raise CpgaitError(f"recorder limits {self.max_files} files / {self.max_bytes} bytes; expected >= 1 each")


class WindowRecorder:
    """Callable: `recorder(keypoints [T, V, 3])` saves one window and returns its path, or None once full."""

    def __init__(
        self,
        folder: str | Path,
        layout: str,
        fps: float,
        image_size: tuple[int, int],
        limits: RecorderLimits = RecorderLimits(),
        source: str = "recorded by the cpgait kiosk",
    ) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CpgaitError(f"{self.folder}: cannot create the recording folder ({exc.strerror})") from None
        self.layout, self.fps, self.image_size = layout, float(fps), image_size
        self.limits, self.source = limits, source
        existing = [p for p in self.folder.glob(f"{PREFIX}*.npz") if not p.name.endswith(".part.npz")]
        self.files = len(existing)
        self.bytes = sum(p.stat().st_size for p in existing)
        self._session = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"  # a restart never reuses a name
        self._count = 0

    @property
    def full(self) -> bool:
        return self.files >= self.limits.max_files or self.bytes >= self.limits.max_bytes

    def __call__(self, keypoints: np.ndarray) -> Path | None:
        if self.full:
            return None
        self._count += 1
        name = f"{PREFIX}{self._session}-{self._count:06d}"
        seq = KeypointSequence(
            np.asarray(keypoints, dtype=np.float32),
            self.fps,
            self.layout,
            self.image_size,
            label=None,
            recording_id=name,
            source=self.source,
        )
        path = seq.save(self.folder / f"{name}.npz")
        self.files += 1
        self.bytes += path.stat().st_size
        return path
