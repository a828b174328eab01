"""Peak memory of the benchmark process: the resident-set high-water mark, reset between backends where Linux allows.

Linux keeps the peak RSS in `/proc/self/status` (VmHWM) and resets it when "5" is written to `/proc/self/clear_refs`
(Linux >= 4.0), so each backend gets its own peak. Elsewhere only the process-lifetime peak
(`resource.getrusage`, or psutil's peak working set on Windows) exists, and the report says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def current_rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window; False where the OS keeps only the process-lifetime peak."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Peak RSS since the last successful `reset_peak_rss()` (or since the process started)."""
    if _STATUS.is_file():
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    info = psutil.Process().memory_info()
    if hasattr(info, "peak_wset"):
        return int(info.peak_wset)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass(frozen=True)
class MemoryWindow:
    """Peak RSS over one stretch of work and how much the RSS grew over it (what the work itself kept)."""

    peak_mb: float
    growth_mb: float
    scope: str  # "window" when the peak was reset at the start, "process" when it is the process-lifetime peak

    def __post_init__(self) -> None:
        if self.scope not in ("window", "process"):
            raise ValueError(f"memory scope {self.scope!r}; expected 'window' or 'process'")


class PeakMemory:
    """Context manager: `with PeakMemory() as m: work()`, then `m.result` holds the window's peak and growth."""

    def __enter__(self) -> PeakMemory:
        self._start = current_rss_bytes()
        self._scope = "window" if reset_peak_rss() else "process"
        self._result: MemoryWindow | None = None
        return self

    @property
    def result(self) -> MemoryWindow:
        """The window's peak and growth, once the `with` block has ended."""
        if self._result is None:
            raise RuntimeError("PeakMemory.result is read inside its with-block")
        return self._result

    def __exit__(self, *exc: object) -> None:
        peak = max(peak_rss_bytes(), current_rss_bytes())
        self._result = MemoryWindow(
            peak_mb=round(peak / 2**20, 1),
            growth_mb=round((current_rss_bytes() - self._start) / 2**20, 1),
            scope=self._scope,
        )
