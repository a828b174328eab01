"""The one error type for a user's mistake: the CLI prints it without a traceback and exits non-zero."""

from __future__ import annotations

import os
from pathlib import Path


class CpgaitError(ValueError):
    """Bad input from the user: names the file, the value and what was expected."""


def refuse_overwrite(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Raise unless `path` is free or the user asked to overwrite it (nothing the user had is lost silently)."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise CpgaitError(f"{p}: already exists; pass --overwrite to replace it")


def require_writable(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing output without `overwrite` and a folder that cannot be written, before any work is done."""
    p = Path(path)
    refuse_overwrite(p, overwrite)
    probe = p.with_name(p.name + ".probe")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CpgaitError(f"{p}: cannot write there ({exc.strerror or exc})") from None
    return p
