"""`cpgait pose`: a recording's walking subject as a keypoint sequence, through the same capture, pose and subject
stages as `cpgait run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.live.capture import FileSource
from cpgait.runtime.live.pipeline import MEASURED, FrameReport, Pipeline, RunSummary
from cpgait.runtime.live.subject import SubjectPose
from cpgait.runtime.pose.interface import PoseModel


class SequenceCollector:
    """A pipeline's report callback keeping each frame's measured subject; `sequence()` builds `cpgait pose`'s
    sequence from them, so any run over the recording (`cpgait pose`, `cpgait run`, `cpgait batch`) yields it."""

    def __init__(self, video: str, pose_name: str, layout: str) -> None:
        self.video = str(video)
        self.pose_name = pose_name
        self.layout = layout
        self.image_size: tuple[int, int] = (0, 0)  # (width, height) of the first frame
        self._frames: dict[int, tuple[int | None, np.ndarray | None]] = {}  # frame index -> (track, keypoints)
        self._times: dict[int, float] = {}  # frame index -> its time in the video, seconds

    def __call__(self, report: FrameReport) -> None:
        sf = report.subject
        if not self._frames:
            self.image_size = (sf.frame.image.shape[1], sf.frame.image.shape[0])
        measured = sf.subject is not None and sf.keypoints is not None and sf.status in MEASURED
        track = sf.subject.track_id if sf.subject is not None and measured else None
        self._frames[sf.frame.index] = (track, sf.keypoints if measured else None)
        self._times[sf.frame.index] = sf.frame.timestamp

    def sequence(self, summary: RunSummary) -> KeypointSequence:
        """The subject measured on the most frames (its track), in the pose model's layout, at the video's fps,
        trimmed to the span from its first to its last measured frame; frames inside that span where it was not
        measured are missing (confidence 0). No walking subject at all is an error."""
        ids = [i for i, _ in self._frames.values() if i is not None]
        if not ids:
            seen = ", ".join(f"{k} {v}" for k, v in summary.statuses.items())
            raise CpgaitError(f"{self.video}: no walking subject found in {summary.frames} frames ({seen})")
        best = max(set(ids), key=ids.count)
        span = sorted(n for n, (i, _) in self._frames.items() if i == best)
        kp = np.zeros((span[-1] - span[0] + 1, get_layout(self.layout).num_joints, 3), dtype=np.float32)
        kp[..., :2] = np.nan
        rows = np.arange(span[0], span[-1] + 1)
        for row, n in enumerate(rows):
            track, points = self._frames.get(int(n), (None, None))
            if track == best:
                kp[row] = points
        fps = summary.source_fps
        return KeypointSequence(
            keypoints=kp,
            fps=fps,
            layout=self.layout,
            image_size=self.image_size,
            recording_id=Path(self.video).stem,
            frame_index=rows,
            timestamps=np.array([self._times.get(int(n), n / fps) for n in rows]),
            source=f"cpgait pose: {self.pose_name} pose model on {Path(self.video).name}, "
            f"frames {span[0]}-{span[-1]} of {summary.frames}"
            + (f" (INCOMPLETE: {summary.capture.incomplete})" if summary.capture.incomplete else ""),
        )


def record_sequence(
    video: str, pose: PoseModel, max_frames: int | None = None, fps: float | None = None
) -> tuple[KeypointSequence, RunSummary]:
    """`cpgait pose`: the same capture, pose and subject stages as `cpgait run` over a whole recording (`fps`
    replaces the file's stated frame rate); the sequence is `SequenceCollector.sequence`'s."""
    for runner in pose.runners():
        runner.activate()
    source = FileSource(video, max_frames=max_frames, fps=fps)
    collect = SequenceCollector(video, pose.name, pose.layout)
    with source:
        summary = Pipeline(source, SubjectPose(pose, source.size, pose.layout)).run(collect)
    return collect.sequence(summary), summary
