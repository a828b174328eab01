"""The malloc arena cap of the live loop's process (glibc only)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from cpgait.runtime.live.allocator import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's arena cap is glibc's")
def test_the_cap_is_taken_by_glibc_and_threads_then_share_the_arenas() -> None:
    # in a fresh process (this one's threads have their arenas already): 8 threads allocating at once would make
    # up to 8 arenas; capped, malloc_stats lists 2
    code = (
        "import ctypes, threading\n"
        "from cpgait.runtime.live.allocator import limit_malloc_arenas\n"
        "assert limit_malloc_arenas(2)\n"
        "barrier = threading.Barrier(8)\n"
        "def work():\n"
        "    barrier.wait()\n"
        "    keep = [bytearray(200_000) for _ in range(20)]\n"
        "    barrier.wait()\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "ctypes.CDLL('libc.so.6').malloc_stats()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    arenas = done.stderr.count("Arena ")
    assert arenas == 2, done.stderr


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="malloc arenas 0; expected >= 1"):
        limit_malloc_arenas(0)
