"""Atomic file writes: a power cut or a crash leaves either the old file or the new one, never half of one.

The bytes go to a temporary file in the target's folder, are flushed to the disk (fsync), and the temporary file is
renamed over the target (`os.replace` is atomic within one file system); the folder is synced so the rename itself
survives. Engines, side-cars, timing caches and calibration caches are all written this way: a kiosk is switched off
at the wall.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see the module docstring); returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """fsync a folder so a rename in it is durable (not possible on every platform: skipped where it is not)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
