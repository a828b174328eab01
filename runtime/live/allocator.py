"""How many malloc arenas the live loop's process may use, so that its memory stays flat over hours.

glibc's malloc gives each thread that allocates its own arena (up to 8 per core). The loop's threads (decode,
pose, temporal, drawing, the ONNX Runtime pools, a web app's workers) hand 5 MB frames and crops to each other, so
each arena can keep freed frame-sized holes of its own and resident memory can creep up in frame-sized steps
although every buffer and log of the loop is bounded. The first 60-minute soak (issue 14) stepped from 285 to
337 MB; with the arenas capped at two (glibc's M_ARENA_MAX, also settable as MALLOC_ARENA_MAX before the process
starts) the rerun stayed within 3.9 % of its median (bench/results/README.md; the two hours also differed in load,
so this is not a controlled comparison). The cap has to be set before the threads first allocate.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
LIVE_ARENAS = 2


def limit_malloc_arenas(arenas: int = LIVE_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; False where the C library is not glibc (nothing changes)."""
    if arenas < 1:
        raise ValueError(f"malloc arenas {arenas}; expected >= 1")
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))
