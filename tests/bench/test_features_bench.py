"""`cpgait-bench features`: the report's shape and the command's handling of bad options (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys

from cpgait.bench.features import render, run_features_bench


def test_report_has_every_measure_in_wall_and_cpu_time() -> None:
    report = run_features_bench(window=124, fps=30.0, layout="coco17", frames=12, seed=3)
    for clock in ("wall_us", "cpu_us"):
        assert set(report[clock]) == {"push", "push + features", "push + inputs", "batch inputs"}
        for stats in report[clock].values():
            assert stats["n"] == 12 and 0 <= stats["min"] <= stats["p50"] <= stats["p95"] <= stats["p99"]
    assert "SYNTHETIC" in report["data"] and report["machine"]["logical_cpus"] >= 1
    text = render(report)
    assert "push + inputs" in text and "T=124" in text
    json.dumps(report)


def test_command_refuses_bad_options_and_existing_output(tmp_path) -> None:
    def bench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cpgait.bench.cli", "features", *args], capture_output=True, text=True, timeout=300
        )

    few = bench("--frames", "3")
    assert few.returncode == 2 and "--frames 3" in few.stderr and "Traceback" not in few.stderr
    out = tmp_path / "r.json"
    out.write_text("{}")
    kept = bench("--frames", "10", "--json", str(out))
    assert kept.returncode == 2 and "already exists" in kept.stderr and out.read_text() == "{}"
