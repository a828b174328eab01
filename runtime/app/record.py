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


def record_sequence(video: str, pose: PoseModel, max_frames: int | None = None) -> tuple[KeypointSequence, RunSummary]:
    """`cpgait pose`: the same capture, pose and subject stages as `cpgait run` over a whole recording.

    The sequence is the subject measured on the most frames (its track), in the pose model's layout, at the
    video's fps, trimmed to the span from its first to its last measured frame; frames inside that span where it
    was not measured are missing (confidence 0). No walking subject at all is an error.
    """
    for runner in pose.runners():
        runner.activate()
    source = FileSource(video, max_frames=max_frames)
    pipeline = Pipeline(source, SubjectPose(pose, source.size, pose.layout))
    frames: dict[int, tuple[int | None, np.ndarray | None]] = {}  # frame index -> (track, keypoints)
    times: dict[int, float] = {}  # frame index -> its time in the video, seconds

    def keep(report: FrameReport) -> None:
        sf = report.subject
        measured = sf.subject is not None and sf.keypoints is not None and sf.status in MEASURED
        track = sf.subject.track_id if sf.subject is not None and measured else None
        frames[sf.frame.index] = (track, sf.keypoints if measured else None)
        times[sf.frame.index] = sf.frame.timestamp

    with source:
        summary = pipeline.run(keep)
    ids = [i for i, _ in frames.values() if i is not None]
    if not ids:
        seen = ", ".join(f"{k} {v}" for k, v in summary.statuses.items())
        raise CpgaitError(f"{video}: no walking subject found in {summary.frames} frames ({seen})")
    best = max(set(ids), key=ids.count)
    span = sorted(n for n, (i, _) in frames.items() if i == best)
    num_joints = get_layout(pose.layout).num_joints
    kp = np.zeros((span[-1] - span[0] + 1, num_joints, 3), dtype=np.float32)
    kp[..., :2] = np.nan
    rows = np.arange(span[0], span[-1] + 1)
    for row, n in enumerate(rows):
        track, points = frames.get(int(n), (None, None))
        if track == best:
            kp[row] = points
    sequence = KeypointSequence(
        keypoints=kp,
        fps=source.fps,
        layout=pose.layout,
        image_size=source.size,
        recording_id=Path(video).stem,
        frame_index=rows,
        timestamps=np.array([times.get(int(n), n / source.fps) for n in rows]),
        source=f"cpgait pose: {pose.name} pose model on {Path(video).name}, "
        f"frames {span[0]}-{span[-1]} of {summary.frames}"
        + (f" (INCOMPLETE: {summary.capture.incomplete})" if summary.capture.incomplete else ""),
    )
    return sequence, summary
