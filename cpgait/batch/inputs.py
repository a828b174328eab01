"""What `cpgait batch` runs over: a folder of videos or a CSV manifest (path, optional subject, label and fps)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.live.capture import check_fps

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
MANIFEST_COLUMNS = ("path", "subject", "label", "fps")


@dataclass(frozen=True)
class BatchItem:
    """One recording of the archive; `path` is absolute (manifest paths are relative to the manifest); `fps`, when
    given, replaces the frame rate the file's container states (as `cpgait run --fps`)."""

    path: str
    subject: str = ""
    label: str = ""
    fps: float | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise CpgaitError("a batch item needs a video path; got an empty one")
        check_fps(self.fps, self.path)


def read_inputs(source: str | Path) -> list[BatchItem]:
    """The recordings in SOURCE: every video file in a folder (sorted, not recursive) or the rows of a CSV manifest
    with a `path` column (and optional `subject`, `label`, `fps`). Paths named twice are an error (one result
    each)."""
    source = Path(source)
    if source.is_dir():
        items = [BatchItem(str(p.resolve())) for p in sorted(source.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]
        if not items:
            raise CpgaitError(f"{source}: no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
        return items
    if not source.is_file() or source.suffix.lower() != ".csv":
        raise CpgaitError(f"{source}: expected a folder of videos or a CSV manifest (.csv)")
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        unknown = sorted(set(columns) - set(MANIFEST_COLUMNS))
        if "path" not in columns or unknown:
            raise CpgaitError(f"{source}: manifest columns {columns}; expected path and optionally subject, label, fps")
        items = []
        for line, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip():
                raise CpgaitError(f"{source}, line {line}: the path is empty")
            path = Path(row["path"].strip())
            path = path if path.is_absolute() else source.parent / path
            fps_text = (row.get("fps") or "").strip()
            try:
                fps = float(fps_text) if fps_text else None
            except ValueError:
                raise CpgaitError(f"{source}, line {line}: fps {fps_text!r}; expected a number of frames/s") from None
            try:
                item = BatchItem(
                    str(path.resolve()), (row.get("subject") or "").strip(), (row.get("label") or "").strip(), fps
                )
            except CpgaitError as exc:
                raise CpgaitError(f"{source}, line {line}: {exc}") from None
            items.append(item)
    if not items:
        raise CpgaitError(f"{source}: the manifest lists no videos")
    seen: set[str] = set()
    for item in items:
        if item.path in seen:
            raise CpgaitError(f"{source}: {item.path} is listed twice")
        seen.add(item.path)
    return items
