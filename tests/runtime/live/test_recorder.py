"""The kiosk's window recorder: sequence files a site can calibrate on, bounded in files and bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.data.dataset import Dataset
from cpgait.runtime.live.recorder import RecorderLimits, WindowRecorder


def _window(t: int = 8, v: int = 17) -> np.ndarray:
    kp = np.random.default_rng(0).uniform(0, 100, (t, v, 3)).astype(np.float32)
    kp[..., 2] = 0.9
    return kp


def test_recorded_windows_are_sequence_files_a_dataset_reads(tmp_path: Path) -> None:
    recorder = WindowRecorder(tmp_path / "rec", "coco17", 30.0, (640, 480))
    paths = [recorder(_window()) for _ in range(3)]
    assert all(p is not None and p.suffix == ".npz" for p in paths)
    seq = KeypointSequence.load(paths[0])
    assert seq.layout == "coco17" and seq.fps == 30.0 and seq.label is None and np.allclose(seq.keypoints, _window())
    records = Dataset.from_path(tmp_path / "rec").records
    assert len(records) == 3 and all(r.num_frames == 8 for r in records)


@pytest.mark.parametrize("limits,saved", [(RecorderLimits(max_files=2), 2), (RecorderLimits(max_bytes=1), 1)])
def test_the_folder_is_bounded_across_restarts(tmp_path: Path, limits: RecorderLimits, saved: int) -> None:
    recorder = WindowRecorder(tmp_path, "coco17", 30.0, (640, 480), limits)
    results = [recorder(_window()) for _ in range(4)]
    assert sum(r is not None for r in results) == saved and recorder.full
    again = WindowRecorder(tmp_path, "coco17", 30.0, (640, 480), limits)
    assert again.full and again(_window()) is None
    assert len(list(tmp_path.glob("*.npz"))) == saved


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda d: RecorderLimits(max_files=0), "expected >= 1 each"),
        (lambda d: WindowRecorder(d / "rec", "coco17", 30.0, (640, 480))(_window(v=21)), "layout coco17 has 17"),
        (lambda d: WindowRecorder(d / "f" / "rec", "coco17", 30.0, (640, 480)), "cannot create the recording folder"),
    ],
)
def test_bad_input_is_refused(tmp_path: Path, make, expected: str) -> None:
    (tmp_path / "f").write_text("a file where a folder should be")
    with pytest.raises(CpgaitError, match=expected):
        make(tmp_path)
