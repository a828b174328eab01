"""Atomic file writes: a power cut or a crash leaves either the old file or the new one, never half of one.

The bytes go to a temporary file in the target's folder, are flushed to the disk (fsync), and the temporary file is
renamed over the target (`os.replace` is atomic within one file system); the folder is synced so the rename itself
survives. Engines, side-cars, timing caches and calibration caches are all written this way: a kiosk is switched off
at the wall.
"""

from __future__ import annotations

from pathlib import Path

from cpgait.errors import PendingOutput


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see the module docstring; the same mechanism as every other output,
    `cpgait.errors.PendingOutput`); returns the path."""
    pending = PendingOutput(path)
    try:
        pending.tmp.write_bytes(data)
        return pending.commit()
    except BaseException:
        pending.discard()
        raise
