"""How cpgait-bench measures time: the method every figure in `bench/results/` was made with.

- Clock: `time.perf_counter_ns` (monotonic, nanoseconds), read immediately around one call.
- Warm-up: a number of untimed calls first (first-call allocation, JIT, lazy kernel selection).
- Budget: a fixed number of timed calls (`--iters`) or as many as fit in a wall-clock budget (`--seconds`).
- Devices: when a backend runs asynchronously (CUDA), its `sync` callable runs inside the timed region after every
  call, so a sample is the time until the result exists, not until the launch returned.
- Statistics: percentiles, a 10 % trimmed mean and the median absolute deviation are robust to the outliers a shared
  machine produces; the mean and the sample count are reported as well, never hidden.
- Threads: each CPU backend at each count of `--threads` (`fix_threads`; ONNX Runtime gets it per session as
  intra-op threads).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cpgait.errors import CpgaitError

Clock = Callable[[], int]
TRIM = 0.10
CDF_POINTS = 101  # percentiles 0, 1, ..., 100 kept for plots and comparisons


@dataclass(frozen=True)
class Budget:
    """How long one backend is measured: warm-up calls, then `iters` timed calls or `seconds` of timed calls."""

    warmup: int = 10
    iters: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise CpgaitError(f"--warmup {self.warmup}: expected 0 or more calls")
        if (self.iters is None) == (self.seconds is None):
            raise CpgaitError("give exactly one of --iters N and --seconds S")
        if self.iters is not None and self.iters < 1:
            raise CpgaitError(f"--iters {self.iters}: expected at least 1")
        if self.seconds is not None and not self.seconds > 0:
            raise CpgaitError(f"--seconds {self.seconds}: expected a positive number of seconds")

    def split(self, rounds: int) -> list[Budget]:
        """This budget cut into `rounds` interleavable blocks; only the first block warms up."""
        if rounds < 1:
            raise CpgaitError(f"--rounds {rounds}: expected at least 1")
        if self.iters is not None:
            per = max(1, math.ceil(self.iters / rounds))
            counts = [min(per, self.iters - i * per) for i in range(rounds)]
            return [Budget(self.warmup if i == 0 else 0, iters=c) for i, c in enumerate(counts) if c > 0]
        assert self.seconds is not None  # a budget is iterations or seconds (checked on construction)
        return [Budget(self.warmup if i == 0 else 0, seconds=self.seconds / rounds) for i in range(rounds)]


def measure(
    fn: Callable[[], object],
    budget: Budget,
    sync: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter_ns,
) -> np.ndarray:
    """Call `fn` `budget.warmup` times untimed, then time each call (plus `sync`); return the samples in ns."""
    for _ in range(budget.warmup):
        fn()
        if sync is not None:
            sync()
    samples: list[int] = []
    deadline = None if budget.seconds is None else clock() + int(budget.seconds * 1e9)
    while True:
        start = clock()
        fn()
        if sync is not None:
            sync()
        end = clock()
        samples.append(end - start)
        if budget.iters is not None and len(samples) >= budget.iters:
            break
        if deadline is not None and end >= deadline:
            break
    return np.asarray(samples, dtype=np.int64)


@dataclass(frozen=True)
class LatencyStats:
    """Outlier-robust summary of latency samples, in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    trimmed_mean_ms: float
    mad_ms: float
    min_ms: float
    max_ms: float

    def __post_init__(self) -> None:
        if self.n < 1:
            raise CpgaitError(f"latency statistics need at least one sample; got {self.n}")
        if not self.min_ms <= self.p50_ms <= self.p95_ms <= self.p99_ms <= self.max_ms:
            raise CpgaitError(f"latency percentiles out of order: {self}")

    @classmethod
    def from_ms(cls, samples_ms: np.ndarray) -> LatencyStats:
        x = np.sort(np.asarray(samples_ms, dtype=np.float64).ravel())
        if x.size == 0:
            raise CpgaitError("latency statistics need at least one sample; got none")
        cut = int(x.size * TRIM)
        kept = x[cut : x.size - cut] if x.size - 2 * cut > 0 else x
        p50, p95, p99 = np.percentile(x, [50, 95, 99])
        return cls(
            n=int(x.size),
            mean_ms=float(x.mean()),
            p50_ms=float(p50),
            p95_ms=float(p95),
            p99_ms=float(p99),
            trimmed_mean_ms=float(kept.mean()),
            mad_ms=float(np.median(np.abs(x - p50))),
            min_ms=float(x[0]),
            max_ms=float(x[-1]),
        )

    @classmethod
    def from_ns(cls, samples_ns: np.ndarray) -> LatencyStats:
        return cls.from_ms(np.asarray(samples_ns, dtype=np.float64) / 1e6)


def percentiles_ms(samples_ms: np.ndarray) -> list[float]:
    """Percentiles 0..100 of the samples (the CDF kept in the JSON, rounded to 0.1 µs)."""
    return [round(float(v), 4) for v in np.percentile(np.asarray(samples_ms, dtype=np.float64), range(CDF_POINTS))]


def default_threads() -> int:
    """The physical core count (hyper-threads add little to dense inference and a lot of noise)."""
    import psutil

    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def parse_ints(text: str, flag: str) -> list[int]:
    """`1,4,16` -> [1, 4, 16]; anything else is a user error naming the flag."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CpgaitError(f"{flag} {text!r}: expected comma-separated whole numbers such as 1,4,16") from None
    if not values or any(v < 1 for v in values):
        raise CpgaitError(f"{flag} {text!r}: expected positive whole numbers such as 1,4,16")
    return list(dict.fromkeys(values))


def fix_threads(threads: int) -> None:
    """Pin the intra-op thread count of the libraries already loaded (torch, OpenCV); ORT gets it per session."""
    if threads < 1:
        raise CpgaitError(f"--threads {threads}: expected at least 1")
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)
