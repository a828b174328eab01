"""`cpgait-bench batch`'s summary: each round's speed-up against its own base, medians over rounds."""

from __future__ import annotations

from cpgait.bench.batch import render, summarise


def _run(round_: int, workers: int, wall: float) -> dict:
    return {
        "round": round_,
        "workers": workers,
        "wall_s": wall,
        "frames_per_s": 1500 / wall,
        "videos_per_min": 600 / wall,
        "stage_s": {"pose": 1.0},
    }


def test_speedups_are_per_round_and_the_summary_takes_their_median_and_minimum() -> None:
    runs = [_run(1, 1, 30.0), _run(1, 2, 20.0), _run(2, 1, 36.0), _run(2, 2, 18.0), _run(3, 1, 28.0), _run(3, 2, 16.0)]
    summary = summarise(runs)
    assert [r["speedup"] for r in runs] == [1.0, 1.5, 1.0, 2.0, 1.0, 1.75]
    one, two = summary
    assert (one["workers"], one["rounds"], one["wall_s"], one["speedup_median"]) == (1, 3, 30.0, 1.0)
    assert (two["workers"], two["wall_s"], two["speedup_median"], two["speedup_min"]) == (2, 18.0, 1.75, 1.5)
    assert two["frames_per_s"] == round(1500 / 18.0, 2)
    text = render(
        {
            "environment": {"command": "cpgait-bench batch x", "cpu": {"model": "cpu"}},
            "settings": {"clips": 10, "frames": 150, "ray_cpus": 2.0},
            "runs": runs,
            "summary": summary,
        }
    )
    assert "| 2 | 3 | 18.0 | 83.33 | 1.75x | 1.5x |" in text and "| 2 | 2 | 18.0 |" in text
