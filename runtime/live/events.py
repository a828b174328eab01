"""The JSON-lines event log of a run: one object per line (start, subject, window, summary), flushed as written.

While the run goes on, the lines go to a hidden temporary file next to the log (`.NAME.PID.part.jsonl`, which a
monitor may tail); `close()` renames it onto the log's name, `discard()` (a failed run) removes it, so the log a
previous run left is only ever replaced by a complete one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from cpgait.errors import PendingOutput, refuse_overwrite


class EventLog:
    """JSON lines: one object per line, each with a "type" (start, subject, window, summary); flushed per line."""

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        refuse_overwrite(self.path, overwrite)
        self._pending = PendingOutput(self.path)
        self._file: TextIO | None = self._pending.tmp.open("w", encoding="utf-8")

    @property
    def writing_to(self) -> Path:
        """The file the lines go to until the log is closed."""
        return self._pending.tmp

    def write(self, event: dict) -> None:
        if "type" not in event:
            raise ValueError(f"event {event} has no type")
        if self._file is None:
            raise RuntimeError(f"{self.path}: event log already closed")
        self._file.write(json.dumps(event, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Finish the log: it replaces the file at `path`."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._pending.commit()

    def discard(self) -> None:
        """Drop the log of a failed run; the file at `path` stays as it was."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pending.discard()
