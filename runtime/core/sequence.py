"""Keypoint sequences and their one file format.

A sequence file is an uncompressed-safe NumPy `.npz` (loaded with `allow_pickle=False`) holding:

| key            | type                 | meaning                                                                 |
|----------------|----------------------|-------------------------------------------------------------------------|
| format         | str                  | `cpgait.sequence/1`                                                     |
| keypoints      | float32 `[T, V, 3]`  | x, y in pixels, confidence in [0, 1]; x, y NaN where confidence is 0  |
| fps            | float64 scalar       | frames per second, > 0                                                  |
| layout         | str                  | a name from `cpgait.runtime.core.layouts.LAYOUTS`; V must match it     |
| image_size     | int64 `[2]`          | width, height in pixels                                                 |
| label          | int64 scalar         | GMFCS level as 0-3 (= I-IV), or -1 when unknown                         |
| subject_id     | str                  | who walked (the unit of data splits)                                    |
| recording_id   | str                  | which recording                                                         |
| source         | str                  | free-form provenance and licence note (synthetic data says so here)     |
| frame_index    | int64 `[T]`, optional| each row's frame number in the source video (rows from `cpgait pose`)   |
| timestamps     | float64 `[T]`, opt.  | each row's time in the source video, seconds                            |

The two optional keys let a user line keypoints up with the video they came from; rows are still evenly spaced at
`fps` (a frame the subject was not measured in is a row of missing points).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cpgait.errors import CpgaitError, atomic_output
from cpgait.runtime.core.files import MAX_COORDINATE_PX, MAX_FRAMES, npz_fields
from cpgait.runtime.core.layouts import get_layout

FORMAT = "cpgait.sequence/1"
FIELDS = (
    "format",
    "keypoints",
    "fps",
    "layout",
    "image_size",
    "label",
    "subject_id",
    "recording_id",
    "source",
    "frame_index",
    "timestamps",
)  # the last two are optional
GMFCS_LEVELS = ("I", "II", "III", "IV")
MIN_FRAMES = 2
MAX_FPS = 10_000.0


@dataclass
class KeypointSequence:
    """One person's 2-D keypoints over time, validated on construction."""

    keypoints: np.ndarray
    fps: float
    layout: str
    image_size: tuple[int, int]
    label: int | None = None
    subject_id: str = ""
    recording_id: str = ""
    source: str = ""
    frame_index: np.ndarray | None = None
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        lay = get_layout(self.layout)
        kp = np.asarray(self.keypoints)
        if kp.ndim != 3 or kp.shape[2] != 3:
            raise CpgaitError(f"keypoints have shape {kp.shape}; expected [T, V, 3] (x, y, confidence)")
        if kp.shape[1] != lay.num_joints:
            raise CpgaitError(f"keypoints have {kp.shape[1]} joints; layout {lay.name} has {lay.num_joints}")
        if kp.shape[0] < MIN_FRAMES:
            raise CpgaitError(f"sequence has {kp.shape[0]} frame(s); at least {MIN_FRAMES} are needed")
        if kp.shape[0] > MAX_FRAMES:
            raise CpgaitError(f"sequence has {kp.shape[0]} frames; at most {MAX_FRAMES} are read")
        if not np.issubdtype(kp.dtype, np.floating):
            raise CpgaitError(f"keypoints have dtype {kp.dtype}; expected float32")
        kp = kp.astype(np.float32, copy=False)
        conf = kp[..., 2]
        if not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1:
            raise CpgaitError("confidences must be finite and in [0, 1]")
        bad = (conf > 0) & ~np.all(np.isfinite(kp[..., :2]), axis=-1)
        if bad.any():
            t, v = map(int, np.argwhere(bad)[0])
            raise CpgaitError(
                f"{int(bad.sum())} confident keypoint(s) are not finite (first: frame {t}, joint {lay.joints[v]}); "
                "x, y may be NaN only where the confidence is 0"
            )
        far = (conf > 0) & np.any(np.abs(np.nan_to_num(kp[..., :2])) > MAX_COORDINATE_PX, axis=-1)
        if far.any():
            t, v = map(int, np.argwhere(far)[0])
            raise CpgaitError(
                f"keypoint {lay.joints[v]} in frame {t} is at {kp[t, v, :2].tolist()}; expected pixel coordinates "
                f"within +-{MAX_COORDINATE_PX:g}"
            )
        if not (np.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise CpgaitError(f"fps is {self.fps}; expected a number > 0 and at most {MAX_FPS}")
        w, h = (int(s) for s in self.image_size)
        if not (0 < w <= MAX_COORDINATE_PX and 0 < h <= MAX_COORDINATE_PX):
            raise CpgaitError(
                f"image size is {self.image_size}; expected (width, height) > 0 and <= {MAX_COORDINATE_PX:g}"
            )
        if self.label is not None and self.label not in range(len(GMFCS_LEVELS)):
            raise CpgaitError(f"label is {self.label}; expected 0-3 (GMFCS I-IV) or none")
        for name, dtype in (("frame_index", np.int64), ("timestamps", np.float64)):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.shape != (kp.shape[0],) or not np.all(np.isfinite(value)) or np.any(np.diff(value) <= 0):
                raise CpgaitError(
                    f"{name} has shape {value.shape}; expected [{kp.shape[0]}] increasing finite values, one per frame"
                )
            setattr(self, name, value.astype(dtype))
        self.keypoints = kp
        self.fps = float(self.fps)
        self.image_size = (w, h)

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the sequence; an existing file is kept unless `overwrite`."""
        path = Path(path)
        if path.suffix != ".npz":
            raise CpgaitError(f"{path}: sequence files end in .npz")
        with atomic_output(path, overwrite) as tmp:
            self._write(tmp)
        return path

    def _write(self, tmp: Path) -> None:
        optional: dict[str, Any] = {
            k: v for k, v in (("frame_index", self.frame_index), ("timestamps", self.timestamps)) if v is not None
        }
        np.savez_compressed(
            tmp,
            format=np.str_(FORMAT),
            keypoints=self.keypoints,
            fps=np.float64(self.fps),
            layout=np.str_(self.layout),
            image_size=np.asarray(self.image_size, dtype=np.int64),
            label=np.int64(-1 if self.label is None else self.label),
            subject_id=np.str_(self.subject_id),
            recording_id=np.str_(self.recording_id),
            source=np.str_(self.source),
            **optional,
        )

    @classmethod
    def load(cls, path: str | Path) -> KeypointSequence:
        """Read and validate a sequence file; every problem names the file."""
        path = Path(path)
        fields, _ = npz_fields(path, FIELDS, (), "sequence file")
        if str(fields.get("format", "")) != FORMAT:
            raise CpgaitError(f"{path}: format is {str(fields.get('format', 'missing'))!r}; expected {FORMAT!r}")
        try:
            label = int(fields["label"])
            return cls(
                keypoints=fields["keypoints"],
                fps=float(fields["fps"]),
                layout=str(fields["layout"]),
                image_size=_width_height(fields["image_size"]),
                label=None if label < 0 else label,
                subject_id=str(fields["subject_id"]),
                recording_id=str(fields["recording_id"]),
                source=str(fields["source"]),
                frame_index=fields.get("frame_index"),
                timestamps=fields.get("timestamps"),
            )
        except KeyError as exc:
            raise CpgaitError(f"{path}: missing field {exc.args[0]!r}") from None
        except CpgaitError as exc:
            raise CpgaitError(f"{path}: {exc}") from None
        except (TypeError, ValueError, OverflowError) as exc:  # e.g. a text label, an image size of three numbers
            raise CpgaitError(f"{path}: a field has the wrong type or size ({exc}); see the format table") from None


def _width_height(value: np.ndarray) -> tuple[int, int]:
    """A stored image size: exactly two whole numbers (a wrong size is a ValueError the loader names the file for)."""
    width, height = (int(s) for s in np.asarray(value).reshape(-1))  # unpacking refuses any count but two
    return width, height
