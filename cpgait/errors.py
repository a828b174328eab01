"""The one error type for a user's mistake: the CLI prints it without a traceback and exits non-zero."""

from __future__ import annotations


class CpgaitError(ValueError):
    """Bad input from the user: names the file, the value and what was expected."""


def refuse_overwrite(path: "object", overwrite: bool) -> None:
    """Raise unless `path` is free or the user asked to overwrite it (nothing the user had is lost silently)."""
    from pathlib import Path

    p = Path(str(path))
    if p.exists() and not overwrite:
        raise CpgaitError(f"{p}: already exists; pass --overwrite to replace it")
