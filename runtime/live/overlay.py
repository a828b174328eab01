"""What the kiosk shows and records: the overlay picture, the overlay video, and the JSON-lines event log.

The overlay draws the subject's skeleton (left side blue, right side orange, candidates grey while searching), a
panel with the state ("searching", "not enough walking yet", the estimate), the latest window's gait numbers, the
session's probability bars, and, for a model trained on synthetic data, a banner saying that it is not a clinical
assessment. It is drawn on the frame's own image (nothing else reads it after the report; a copy would cost a
full-frame memory pass per frame); `fit_width` scales it down for the video file and the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cpgait.errors import CpgaitError, PendingOutput, refuse_overwrite
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.live.gait_session import ESTIMATE, SessionEstimate, WindowResult

if TYPE_CHECKING:
    from cpgait.runtime.live.pipeline import FrameReport

SYNTHETIC_NOTE = "model trained on SYNTHETIC data \u2014 not a clinical assessment"
MAX_WIDTH = 1280  # of the overlay video and window: legible, and cheap to encode
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LEFT, _RIGHT, _MID, _GREY = (235, 150, 40), (40, 140, 255), (230, 230, 230), (150, 150, 150)
_LIVE_NUMBERS = (
    ("cadence", "cadence", "steps/min", 0),
    ("speed", "speed", "leg/s", 2),
    ("step_length", "step length", "leg", 2),
    ("knee_rom_left", "knee ROM L", "deg", 0),
    ("knee_rom_right", "knee ROM R", "deg", 0),
)


def _side_colour(name: str) -> tuple[int, int, int]:
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID


def fit_width(image: np.ndarray, max_width: int = MAX_WIDTH) -> np.ndarray:
    """The image scaled down (never up) to at most `max_width` pixels wide."""
    h, w = image.shape[:2]
    if w <= max_width:
        return image
    return cv2.resize(image, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_LINEAR)


class Overlay:
    """Callable: `overlay(report) -> BGR image` (the frame's image, drawn on); remembers the latest window."""

    def __init__(self, class_names: tuple[str, ...] | None, synthetic: bool) -> None:
        self.class_names = class_names
        self.synthetic = synthetic
        self.last_window: WindowResult | None = None

    def __call__(self, report: FrameReport) -> np.ndarray:
        out = report.subject.frame.image
        if report.window is not None:
            self.last_window = report.window
        for box in report.subject.candidates:
            cv2.rectangle(out, tuple(box[:2].astype(int)), tuple(box[2:].astype(int)), _GREY, 2, cv2.LINE_AA)
        if report.subject.keypoints is not None:
            self._skeleton(out, report.subject.keypoints, report.subject.layout)
        self._panel(out, report)
        return out

    @staticmethod
    def _skeleton(out: np.ndarray, kp: np.ndarray, layout: str) -> None:
        lay = get_layout(layout)
        seen = (kp[:, 2] > 0) & np.all(np.isfinite(kp[:, :2]), axis=1)
        thick = max(2, out.shape[1] // 400)
        for a, b in lay.edges:
            if seen[a] and seen[b]:
                colour = (
                    _side_colour(lay.joints[b]) if lay.joints[a].split("_")[0] == lay.joints[b].split("_")[0] else _MID
                )
                cv2.line(out, tuple(kp[a, :2].astype(int)), tuple(kp[b, :2].astype(int)), colour, thick, cv2.LINE_AA)
        for i in np.flatnonzero(seen):
            cv2.circle(out, tuple(kp[i, :2].astype(int)), thick + 1, _side_colour(lay.joints[i]), -1, cv2.LINE_AA)

    def _panel(self, out: np.ndarray, report: FrameReport) -> None:
        s = out.shape[1] / 1280  # text scale relative to a 1280-px-wide picture
        line = int(26 * s) + 4
        lines: list[tuple[str, tuple[int, int, int]]] = [
            (f"t {report.subject.frame.timestamp:6.2f} s   {report.subject.status}", _MID)
        ]
        est: SessionEstimate | None = report.estimate
        if est is not None:
            if est.state == ESTIMATE:
                windows = f"{est.windows} window" + ("s" if est.windows != 1 else "")
                lines.append(
                    (
                        f"estimate: {est.class_name}  confidence {est.confidence:.2f} "
                        f"({windows}, agreement {est.agreement:.0%})",
                        (120, 255, 120),
                    )
                )
            else:
                lines.append((f"{est.state} ({est.valid_frames}/{est.frames_needed} valid frames)", (80, 220, 255)))
        feats = self.last_window.features if self.last_window is not None else {}
        for key, label, unit, digits in _LIVE_NUMBERS:
            value = feats.get(key)
            text = "-" if value is None else f"{value:.{digits}f}"
            lines.append((f"{label}: {text} {unit}", _MID))
        bars = est.probabilities if est is not None and est.probabilities is not None else None
        rows = len(lines) + (len(self.class_names) if self.class_names and est is not None else 0)
        width = int(560 * s) + 20
        height = rows * line + 16
        panel = out[0:height, 0:width]
        panel >>= 2  # darkened to a quarter, in place (a float blend would cost milliseconds)
        y = line
        for text, colour in lines:
            cv2.putText(out, text, (10, y), _FONT, 0.6 * s, colour, max(1, int(1.5 * s)), cv2.LINE_AA)
            y += line
        if self.class_names and est is not None:
            for i, name in enumerate(self.class_names):
                p = 0.0 if bars is None else float(bars[i])
                cv2.putText(out, name, (10, y), _FONT, 0.55 * s, _MID, max(1, int(1.5 * s)), cv2.LINE_AA)
                x0, x1 = int(130 * s) + 10, width - 60
                cv2.rectangle(out, (x0, y - line + 10), (x1, y - 4), _GREY, 1)
                cv2.rectangle(out, (x0, y - line + 10), (x0 + int((x1 - x0) * p), y - 4), (120, 255, 120), -1)
                cv2.putText(out, f"{p:.2f}", (x1 + 6, y), _FONT, 0.5 * s, _MID, 1, cv2.LINE_AA)
                y += line
        if self.synthetic:
            text = SYNTHETIC_NOTE.replace("\u2014", "-")
            h = out.shape[0]
            cv2.rectangle(out, (0, h - line - 8), (out.shape[1], h), (0, 0, 110), -1)
            cv2.putText(out, text, (10, h - 10), _FONT, 0.6 * s, (255, 255, 255), max(1, int(1.5 * s)), cv2.LINE_AA)


class OverlayVideo:
    """An mp4 (MPEG-4 Part 2, OpenCV's built-in encoder) of overlay frames; refuses to overwrite unless asked.

    Frames go to a hidden temporary file next to `path`; `close()` finalises the container (its index) and
    renames it into place, `discard()` (a failed run) removes it, leaving any previous video untouched.
    """

    def __init__(self, path: str | Path, fps: float, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".avi"):
            raise CpgaitError(f"{self.path}: overlay video must end in .mp4 or .avi")
        refuse_overwrite(self.path, overwrite)
        self._pending = PendingOutput(self.path)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray) -> None:
        """Add one frame, scaled to at most `MAX_WIDTH` pixels wide."""
        image = fit_width(image)
        if self._writer is None:
            fourcc = cv2.VideoWriter.fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
            tmp = str(self._pending.tmp)
            self._writer = cv2.VideoWriter(tmp, fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self._writer.isOpened():
                raise CpgaitError(f"{self.path}: OpenCV could not open a video writer there")
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finalise the video and put it in place (a run that wrote no frame leaves no file)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            self._pending.commit()
        else:
            self._pending.discard()

    def discard(self) -> None:
        """Drop the video of a failed run; the file at `path` stays as it was."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._pending.discard()
