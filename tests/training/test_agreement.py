"""`cpgait agreement`: gait features against truth files, on SYNTHETIC walks (not patient data)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.training import synth
from cpgait.training.agreement import PAIRS, agreement, compare, pearson_interval, recording_features


def _walk(level: int, seed: int, clean: bool = True):
    return synth.synthesize(level, np.random.default_rng(seed), clean=clean, fps=25.0, duration_s=8.0)


def test_a_clean_walk_gives_the_true_cadence_speed_and_knee_extension() -> None:
    seq, truth = _walk(1, 5)
    result = recording_features(seq)
    assert result["windows"] == result["windows_used"] == 3  # 200 frames: windows of 124 at 0, 31, 62
    feats = result["features"]
    assert feats["cadence"] == pytest.approx(truth["cadence_steps_per_min"], rel=0.03)
    assert feats["speed"] == pytest.approx(truth["speed_leg_per_s"], rel=0.02)
    for side in ("left", "right"):
        assert feats[f"knee_peak_extension_{side}"] == pytest.approx(truth["knee_min_deg"][side], abs=3.0)


def test_windows_with_too_many_missing_leg_points_are_not_used() -> None:
    seq, _ = _walk(0, 6)
    seq.keypoints[40:80, 15] = (np.nan, np.nan, 0.0)  # left ankle lost for 1.6 s: 40 of a window's 124 frames
    result = recording_features(seq)
    # the windows at 0 and 31 hold all 40 of those frames (32 %), the one at 62 only 18 (15 %)
    assert result["windows"] == 3 and result["windows_used"] == 1
    seq.keypoints[:, 15] = (np.nan, np.nan, 0.0)
    assert recording_features(seq) == {"features": {}, "windows": 3, "windows_used": 0}


def test_pearson_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    r, lo, hi = pearson_interval(x, y)
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert lo < r < hi
    z = math.atanh(r)
    assert (math.atanh(hi) - z) == pytest.approx(1.959964 / math.sqrt(47))  # Fisher z, n - 3
    assert pearson_interval(x[:20], y[:20])[2] - pearson_interval(x[:20], y[:20])[1] > hi - lo  # fewer, wider
    assert pearson_interval(x[:2], y[:2]) == (None, None, None)
    assert pearson_interval(np.ones(5), x[:5]) == (None, None, None)


def _row(features: dict, truth: dict) -> dict:
    return {"features": features, "truth": truth}


def test_lab_truth_in_metres_per_second_gives_a_correlation_but_no_error() -> None:
    rows = [
        _row({"speed": s, "cadence": c}, {"speed_m_per_s": 0.5 * s, "cadence_steps_per_min": c + 2})
        for s, c in ((1.0, 100.0), (1.2, 110.0), (1.5, 125.0), (0.8, 90.0))
    ]
    by_name = {c["name"]: c for c in compare(rows)}
    assert set(by_name) == {"cadence", "speed vs m/s"}  # only what the truth has
    assert by_name["speed vs m/s"]["r"] == pytest.approx(1.0)
    assert by_name["speed vs m/s"]["mae"] is None and by_name["speed vs m/s"]["unit"] is None
    assert by_name["cadence"]["bias"] == pytest.approx(-2.0) and by_name["cadence"]["mae"] == pytest.approx(2.0)
    assert by_name["cadence"]["paper_r"] == {"cnn": 0.79, "random forest": 0.607}


def test_sides_are_compared_alone_and_pooled() -> None:
    rows = [
        _row(
            {"knee_peak_extension_left": 5.0 + i, "knee_peak_extension_right": 3.0 * i},
            {"knee_min_deg": {"left": 4.0 + i, "right": None if i == 0 else 3.0 * i}},
        )
        for i in range(5)
    ]
    by_name = {c["name"]: c for c in compare(rows)}
    assert by_name["knee_peak_extension_left"]["n"] == 5 and by_name["knee_peak_extension_right"]["n"] == 4
    pooled = by_name["knee_peak_extension (both sides)"]
    assert pooled["n"] == 9 and pooled["mae"] == pytest.approx(5 / 9)
    assert {p.name for p in PAIRS} >= set(by_name)


def test_report_on_synthetic_data_is_written_and_says_synthetic(synth_data: Path, tmp_path: Path) -> None:
    report = agreement(synth_data, tmp_path / "out")
    assert report["truth"] == "synthetic" and report["with_truth"] == report["recordings"] == 12
    names = [c["name"] for c in report["comparisons"]]
    assert {"cadence", "speed", "speed vs m/s", "knee_peak_extension (both sides)"} <= set(names)
    written = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert written["comparisons"][0]["n"] == len(written["comparisons"][0]["values"]["feature"])
    assert "SYNTHETIC" in (tmp_path / "out" / "agreement.md").read_text()
    assert (tmp_path / "out" / "agreement.png").stat().st_size > 10_000
    with pytest.raises(CpgaitError, match="exists"):
        agreement(synth_data, tmp_path / "out")


def test_no_truth_files_is_a_clear_error(synth_data: Path, tmp_path: Path) -> None:
    for path in sorted(synth_data.glob("*.npz"))[:2]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    with pytest.raises(CpgaitError, match="none of its 2 sequences has a truth file"):
        agreement(tmp_path)
    with pytest.raises(CpgaitError, match="--window-s is 0"):
        agreement(tmp_path, window_s=0)


def test_cli(synth_data: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cpgait.cli", "agreement", *args], capture_output=True, text=True)

    done = cli(str(synth_data))
    assert done.returncode == 0, done.stderr
    assert "cadence_steps_per_min" in done.stdout and "SYNTHETIC" in done.stdout
    bad = cli(str(tmp_path / "nothing"))
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and bad.stderr.count("\n") == 1
