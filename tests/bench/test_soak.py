"""`cpgait-bench soak`: the verdicts catch leaks and backlogs, and a one-minute soak of the kiosk loop passes them
(the hour-long soak, with the same code and assertions, runs outside `make test`: bench/results/soak-*.json)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from cpgait.bench.soak import run_soak, save_plot, verdicts

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / ".cache" / "demo.mp4"
MODEL = ROOT / "runtime" / "assets" / "reference.onnx"


def _samples(n: int = 20, rss=lambda i: 300.0, fds=lambda i: 11, threads=lambda i: 15, p95=lambda i: 40.0) -> list:
    return [
        {
            "t_s": 10.0 * i,
            "rss_mb": rss(i),
            "fds": fds(i),
            "threads": threads(i),
            "queues": {"pose": 0, "results": 1},
            "windows": 2 * i,
            "window_failures": {"no_leg_seen": 3, "features_failed": 0, "classifier_invalid": 0},
            "latency_ms": {"p50": 20.0, "p95": p95(i), "max": 90.0, "frames": 300},
        }
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "changes,failing",
    [
        ({}, set()),
        ({"rss": lambda i: 300.0 + 3.0 * i}, {"rss_flat"}),  # a leak of 3 MB per sample
        ({"rss": lambda i: 600.0 if i < 4 else 300.0}, set()),  # warm-up is not judged
        ({"fds": lambda i: 11 + (i > 10)}, {"no_fd_growth"}),
        ({"threads": lambda i: 15 + i // 5}, {"no_thread_growth"}),
        ({"p95": lambda i: 40.0 * (1 + i)}, {"no_backlog"}),
    ],
)
def test_verdicts_catch_each_kind_of_leak(changes: dict, failing: set) -> None:
    result = verdicts(_samples(**changes))
    assert {k for k, v in result.items() if isinstance(v, dict) and not v["ok"]} == failing


def test_a_failed_window_fails_the_soak_and_the_windows_are_counted_per_quarter() -> None:
    samples = _samples()
    samples[-1]["window_failures"] = {"no_leg_seen": 0, "features_failed": 1, "classifier_invalid": 0}
    assert not verdicts(samples)["no_dropped_windows"]["ok"]
    result = verdicts(_samples())
    assert result["warmup_s"] == 40.0 and result["steady_samples"] == 16  # 20 % of 190 s, at least 30 s
    assert result["no_dropped_windows"]["windows_per_quarter"] == [8, 8, 8, 8]


@pytest.mark.skipif(not DEMO.is_file(), reason="demo clip missing: `make test` downloads it")
def test_a_one_minute_soak_of_the_kiosk_loop_passes(tmp_path: Path) -> None:
    """The same run and assertions as the hour-long soak, for one minute, on a 640x360 copy of the demo clip (the
    size of a kiosk camera stream; the pose model costs less, so a busy 2-core machine still tracks the walker)."""
    clip = tmp_path / "walk-640.mp4"
    src = cv2.VideoCapture(str(DEMO))
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    while True:
        ok, image = src.read()
        if not ok:
            break
        out.write(cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA))
    out.release()
    report = run_soak(str(clip), str(MODEL), minutes=1.0, sample_s=5.0)
    failed = {k: v for k, v in report["verdicts"].items() if isinstance(v, dict) and not v["ok"]}
    assert not failed, (failed, report["summary"])
    assert report["summary"]["frames"] > 0 and len(report["samples"]) >= 10
    save_plot(report, tmp_path / "soak.png")
    assert (tmp_path / "soak.png").stat().st_size > 10_000
