"""The JSON-lines event log of a run: one object per line (start, subject, window, summary), flushed as written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from cpgait.errors import refuse_overwrite


class EventLog:
    """JSON lines: one object per line, each with a "type" (start, subject, window, summary); flushed per line."""

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        refuse_overwrite(self.path, overwrite)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = self.path.open("w", encoding="utf-8")

    def write(self, event: dict) -> None:
        if "type" not in event:
            raise ValueError(f"event {event} has no type")
        if self._file is None:
            raise RuntimeError(f"{self.path}: event log already closed")
        self._file.write(json.dumps(event, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
