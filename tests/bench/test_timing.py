"""The measuring method: warm-up and budgets counted right, sync inside the timed region, robust statistics, and a
known workload (a sleep, a calibrated spin) measured as long as it really is."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cpgait.bench.timing import Budget, LatencyStats, measure, parse_ints, percentiles_ms
from cpgait.errors import CpgaitError


class FakeClock:
    """A clock that only moves when the workload says so: every sample is known exactly."""

    def __init__(self) -> None:
        self.now = 0
        self.calls = 0
        self.syncs = 0

    def __call__(self) -> int:
        return self.now

    def work(self, ns: int) -> None:
        self.calls += 1
        self.now += ns

    def sync(self) -> None:
        self.syncs += 1
        self.now += 1_000_000  # the device finishes 1 ms after the launch returned


def test_warmup_is_untimed_and_iters_are_counted() -> None:
    clock = FakeClock()
    samples = measure(lambda: clock.work(3_000_000), Budget(warmup=4, iters=7), sync=clock.sync, clock=clock)
    assert clock.calls == 11 and clock.syncs == 11
    assert samples.tolist() == [4_000_000] * 7  # launch 3 ms + sync 1 ms, inside the timed region


def test_seconds_budget_stops_at_the_deadline() -> None:
    clock = FakeClock()
    samples = measure(lambda: clock.work(10_000_000), Budget(warmup=0, seconds=0.1), clock=clock)
    assert len(samples) == 10 and clock.calls == 10


def test_a_sleep_is_measured_at_least_as_long_and_not_much_longer() -> None:
    # time.sleep never returns early; a noisy shared 2-core VM may make it late, hence the wide upper bound
    samples = measure(lambda: time.sleep(0.02), Budget(warmup=1, iters=8))
    stats = LatencyStats.from_ns(samples)
    assert stats.n == 8
    assert stats.min_ms >= 19.9
    assert stats.p50_ms < 20.0 + 60.0


def test_a_calibrated_spin_is_measured_within_tolerance() -> None:
    def spin(ms: float = 5.0) -> None:
        end = time.perf_counter_ns() + int(ms * 1e6)
        while time.perf_counter_ns() < end:
            pass

    stats = LatencyStats.from_ns(measure(spin, Budget(warmup=2, iters=10)))
    assert 5.0 <= stats.min_ms
    assert stats.p50_ms < 5.0 + 25.0


def test_statistics_of_known_samples() -> None:
    stats = LatencyStats.from_ms(np.arange(1, 101, dtype=float))
    assert (stats.n, stats.min_ms, stats.max_ms) == (100, 1.0, 100.0)
    assert stats.p50_ms == pytest.approx(50.5) and stats.mean_ms == pytest.approx(50.5)
    assert stats.p95_ms == pytest.approx(95.05) and stats.p99_ms == pytest.approx(99.01)
    assert stats.trimmed_mean_ms == pytest.approx(50.5)
    assert stats.mad_ms == pytest.approx(25.0)
    assert len(percentiles_ms(np.arange(1, 101, dtype=float))) == 101


def test_robust_statistics_ignore_an_outlier_the_mean_does_not() -> None:
    stats = LatencyStats.from_ms(np.array([10.0] * 99 + [10_000.0]))
    assert stats.p50_ms == 10.0 and stats.trimmed_mean_ms == 10.0 and stats.mad_ms == 0.0
    assert stats.mean_ms > 100.0  # reported too, never hidden


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(warmup=5, iters=10), None),
        (dict(warmup=0, seconds=0.5), None),
        (dict(warmup=-1, iters=10), "--warmup -1"),
        (dict(warmup=1, iters=10, seconds=1.0), "exactly one"),
        (dict(warmup=1), "exactly one"),
        (dict(warmup=1, iters=0), "--iters 0"),
        (dict(warmup=1, seconds=0.0), "--seconds 0.0"),
    ],
)
def test_budget_validation(kwargs: dict, error: str | None) -> None:
    if error is None:
        assert Budget(**kwargs)
    else:
        with pytest.raises(CpgaitError, match=error):
            Budget(**kwargs)


def test_budget_split_keeps_the_total_and_warms_up_once() -> None:
    blocks = Budget(warmup=3, iters=10).split(3)
    assert [b.iters for b in blocks] == [4, 4, 2] and [b.warmup for b in blocks] == [3, 0, 0]
    timed = Budget(warmup=3, seconds=3.0).split(4)
    assert sum(b.seconds for b in timed) == pytest.approx(3.0) and len(timed) == 4


@pytest.mark.parametrize(
    "text,expected,error",
    [
        ("1,4,16", [1, 4, 16], None),
        ("1, 1,2", [1, 2], None),
        ("", None, "expected positive"),
        ("1,x", None, "comma-separated whole numbers"),
        ("0", None, "expected positive"),
    ],
)
def test_parse_ints(text: str, expected: list[int] | None, error: str | None) -> None:
    if error is None:
        assert parse_ints(text, "--batch") == expected
    else:
        with pytest.raises(CpgaitError, match=error):
            parse_ints(text, "--batch")
