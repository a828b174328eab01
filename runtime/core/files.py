"""Reading a user's files within stated limits: every malformed, hostile or odd input becomes one `CpgaitError`
naming the file, in bounded time and memory.

The limits (checked before anything is allocated or decoded):

| limit                 | value                      | why                                                             |
|-----------------------|----------------------------|-----------------------------------------------------------------|
| `MAX_FRAMES`          | 432 000 (4 h at 30 fps)    | frames of one sequence, whatever the source says                |
| `MAX_GAP_S`           | 60 s                       | a jump in frame numbers longer than this is a numbering error   |
| `MAX_TEXT_BYTES`      | 1 GiB                      | a CSV or JSON file read into memory                             |
| `MAX_ARRAY_BYTES`     | 512 MiB                    | one array of a `.npz` after decompression (from its header)     |
| `MAX_STRING_CHARS`    | 65 536                     | one text field of a `.npz` (ids, provenance note)               |
| `MAX_COORDINATE_PX`   | 1 000 000                  | a keypoint's x or y (and an image side) in pixels               |

Only regular files are read: a named pipe, a device or a folder where a file is expected is refused at once (reading
a pipe would wait for ever). Text is UTF-8, with or without a byte-order mark.
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError

MAX_FRAMES = 432_000
MAX_GAP_S = 60.0
MAX_TEXT_BYTES = 1 << 30
MAX_ARRAY_BYTES = 512 << 20
MAX_STRING_CHARS = 65_536
MAX_COORDINATE_PX = 1e6


def require_regular_file(path: Path, what: str, max_bytes: int | None = None) -> int:
    """The file's size; a missing file, a folder, a pipe or device, or one above `max_bytes` is an error."""
    try:
        st = path.stat()
    except OSError:
        raise CpgaitError(f"{path}: no such {what}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CpgaitError(f"{path}: is a folder; expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise CpgaitError(f"{path}: not a regular file (a pipe, socket or device); expected a {what}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise CpgaitError(f"{path}: {st.st_size} bytes; a {what} may have at most {max_bytes}")
    return int(st.st_size)


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file (a leading byte-order mark is dropped) of at most `MAX_TEXT_BYTES`."""
    require_regular_file(path, what, MAX_TEXT_BYTES)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CpgaitError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); expected a {what}") from None
    except (OSError, MemoryError) as exc:
        raise CpgaitError(f"{path}: cannot read ({exc.__class__.__name__}: {exc}); expected a {what}") from None


def parse_json(text: str, where: str, what: str) -> object:
    """JSON text; malformed, too deeply nested or with numbers Python cannot hold is an error naming `where`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CpgaitError(
            f"{where}: malformed JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); expected {what}"
        ) from None
    except (RecursionError, ValueError, MemoryError) as exc:  # nesting, 5000-digit integers
        raise CpgaitError(f"{where}: unreadable JSON ({exc.__class__.__name__}); expected {what}") from None


def check_frame_numbers(numbers: list[int], fps: float | None, where: str) -> None:
    """Increasing frame numbers whose span is within `MAX_FRAMES` and, once `fps` is known, whose gaps are within
    `MAX_GAP_S` (checked before anything is allocated for them)."""
    if len(numbers) == 0:
        return
    first, last = int(numbers[0]), int(numbers[-1])
    if last - first + 1 > MAX_FRAMES:
        raise CpgaitError(
            f"{where}: frame numbers {first}..{last} span {last - first + 1} frames; at most {MAX_FRAMES} "
            f"({MAX_FRAMES / 30 / 3600:g} h at 30 fps) are read"
        )
    if fps is None or len(numbers) < 2:
        return
    gaps = [int(b) - int(a) - 1 for a, b in zip(numbers[:-1], numbers[1:])]
    i = max(range(len(gaps)), key=gaps.__getitem__)
    if gaps[i] > MAX_GAP_S * fps:
        raise CpgaitError(
            f"{where}: frame numbers jump from {numbers[i]} to {numbers[i + 1]} ({gaps[i]} missing frames = "
            f"{gaps[i] / fps:.3g} s at {fps:g} fps); at most {MAX_GAP_S:g} s may be missing in a row"
        )


def npz_fields(
    path: Path, arrays: tuple[str, ...], headers: tuple[str, ...], what: str
) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """The members `arrays` of one of cpgait's `.npz` files (no pickles) and the shapes of the members `headers` (not
    decompressed), each header checked against the limits before anything is decompressed. Missing members are left
    out."""
    require_regular_file(path, what)
    values: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            for name in dict.fromkeys(arrays + headers):
                if f"{name}.npy" not in members:
                    continue
                with archive.open(f"{name}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                _check_header(path, name, shape, dtype)
                shapes[name] = tuple(int(n) for n in shape)
                if name in arrays:
                    with archive.open(f"{name}.npy") as member:
                        values[name] = np.lib.format.read_array(member, allow_pickle=False)
    except CpgaitError:
        raise
    except Exception as exc:  # zip, zlib, header (tokenize / literal_eval), overflow and memory errors alike
        raise CpgaitError(f"{path}: not a cpgait {what} ({exc.__class__.__name__}: {exc})") from None
    return values, shapes


def _check_header(path: Path, name: str, shape: tuple, dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise CpgaitError(f"{path}: not a cpgait sequence file (field {name!r} holds Python objects)")
    count = 1
    for n in shape:
        count *= int(n)
    if dtype.kind == "U" and count <= 1 and dtype.itemsize // 4 > MAX_STRING_CHARS:
        raise CpgaitError(
            f"{path}: text field {name!r} has {dtype.itemsize // 4} characters; at most {MAX_STRING_CHARS}"
        )
    if count * dtype.itemsize > MAX_ARRAY_BYTES:
        raise CpgaitError(
            f"{path}: field {name!r} of shape {shape} needs {count * dtype.itemsize} bytes; at most {MAX_ARRAY_BYTES}"
        )
