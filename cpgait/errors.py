"""The one error type for a user's mistake, and the rules that keep a user's files safe.

The CLI prints a `CpgaitError` without a traceback and exits non-zero. Outputs follow three rules so that no run
loses what the user had: every path is checked before any work (`check_outputs`: an output that is an input or
another output, an existing file without --overwrite, a folder that cannot be written), and every output is written
to a temporary file in its own folder and renamed into place only when complete (`atomic_output`, `PendingOutput`),
so a failing or interrupted run leaves the previous files as they were.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class CpgaitError(ValueError):
    """Bad input from the user: names the file, the value and what was expected."""


def refuse_overwrite(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Raise unless `path` is free or the user asked to overwrite it (nothing the user had is lost silently)."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise CpgaitError(f"{p}: already exists; pass --overwrite to replace it")


def require_writable(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing output without `overwrite`, a folder in its place and a folder that cannot be written,
    before any work is done."""
    p = Path(path)
    if p.is_dir():
        raise CpgaitError(f"{p}: is a folder; expected a file name to write")
    refuse_overwrite(p, overwrite)
    probe = p.with_name(f".{p.name}.{os.getpid()}.probe")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CpgaitError(f"{p}: cannot write there ({_why(p, exc)})") from None
    return p


def _why(path: Path, exc: OSError) -> str:
    """The reason a path cannot be written, naming a file that stands where a folder should be."""
    for parent in path.parents:
        if parent.exists():
            return str(exc.strerror or exc) if parent.is_dir() else f"{parent} is a file, not a folder"
    return str(exc.strerror or exc)


def require_writable_folder(path: str | os.PathLike[str]) -> Path:
    """A folder that can be created and written (for outputs named inside it), checked before any work."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CpgaitError(f"{p}: exists and is not a directory; expected a folder to write into")
    probe = p / f".cpgait.{os.getpid()}.probe"
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CpgaitError(f"{p}: cannot write there ({_why(p / 'x', exc)})") from None
    return p


def _identity(path: Path) -> tuple[object, ...]:
    """What makes two paths the same file: device and inode when it exists (hard and symbolic links included),
    otherwise the resolved path."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", str(path.resolve()))


def check_outputs(
    inputs: Iterable[str | os.PathLike[str] | None],
    outputs: Iterable[str | os.PathLike[str] | None],
    overwrite: bool,
    folders: Iterable[str | os.PathLike[str] | None] = (),
) -> list[Path]:
    """All of a command's paths, checked before any model loads or frame is read.

    An output file that is one of the inputs, or the same file as another output, is refused even with
    `overwrite` (it would destroy the input or lose one of the outputs); so is an input inside an output folder's
    place. Each output must be writable (`require_writable`), each output folder creatable (`require_writable_folder`).
    None entries (options not given) are skipped. Returns the output files as paths.
    """
    ins = [Path(p) for p in inputs if p is not None]
    outs = [Path(p) for p in outputs if p is not None]
    dirs = [Path(p) for p in folders if p is not None]
    seen: dict[tuple, Path] = {}
    for p in ins:
        seen.setdefault(_identity(p), p)
    input_ids = set(seen)
    for p in outs + dirs:
        key = _identity(p)
        if key in seen:
            role = "input" if key in input_ids else "output"
            raise CpgaitError(
                f"{p}: is the same file as the {role} {seen[key]}; expected a different path "
                "(--overwrite never replaces an input or another output)"
            )
        seen[key] = p
    for p in dirs:
        require_writable_folder(p)
    for p in outs:
        require_writable(p, overwrite)
    return outs


class PendingOutput:
    """An output being written: `tmp` is a hidden file in the same folder (same file system, so the rename is
    atomic) with the same suffix (writers that pick a format by suffix still work); `commit()` renames it onto
    `path`, `discard()` removes it, leaving whatever was at `path` untouched."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.part{self.path.suffix}")
        self.done = False

    def commit(self) -> Path:
        """Flush the finished file to disk and put it in place."""
        if self.done:
            raise RuntimeError(f"{self.path}: output already finished")
        with open(self.tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, self.path)
        self.done = True
        _sync_folder(self.path.parent)  # so the rename itself survives a power cut
        return self.path

    def discard(self) -> None:
        """Drop the unfinished file (a failed run): the previous file at `path`, if any, stays."""
        if not self.done:
            self.tmp.unlink(missing_ok=True)
            self.done = True


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


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """`with atomic_output(path, overwrite) as tmp:` write `tmp`; on success it replaces `path`, on error it is
    removed and `path` keeps its previous content."""
    refuse_overwrite(path, overwrite)
    pending = PendingOutput(path)
    try:
        yield pending.tmp
    except BaseException:
        pending.discard()
        raise
    pending.commit()
