"""`cpgait-bench pipeline` on a tiny clip: every frame timed, stages and the pose bound reported, schema-valid."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

from cpgait.bench.cli import main
from cpgait.bench.compare import compare
from cpgait.bench.pipeline import WARMUP_FRAMES, _steady_fps, run_pipeline_bench
from cpgait.bench.report import to_markdown
from cpgait.bench.results import validate

cv2 = pytest.importorskip("cv2")
sys.path.insert(0, str(Path(__file__).parent))
from test_model_bench import _tiny_onnx  # noqa: E402  (the same tiny classifier)

FRAMES = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 320x240 MJPG clip of a moving grey bar (nobody in it: the detector searches every frame)."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    for i in range(FRAMES):
        image = np.full((240, 320, 3), 40, dtype=np.uint8)
        image[60:200, 20 + 10 * i : 50 + 10 * i] = 200
        writer.write(image)
    writer.release()
    return path


def test_pipeline_report_times_every_frame_and_validates(clip: Path, tmp_path: Path) -> None:
    model = _tiny_onnx(tmp_path / "tiny.onnx", window=96)
    report = run_pipeline_bench(str(clip), str(model), pose="blazepose")
    validate(report)
    e2e = report["end_to_end"]
    assert e2e["frames"] == FRAMES and e2e["latency"]["n"] == FRAMES and e2e["dropped"] == 0
    assert report["settings"]["live"] is False
    assert report["pose_bound"]["frames"] == FRAMES and report["pose_bound"]["fps"] > 0
    stages = {s["stage"]: s for s in report["stages"]}
    assert {"decode", "detector", "tracking"} <= set(stages)
    assert stages["decode"]["latency"]["n"] == FRAMES
    assert sum(s["share"] for s in report["stages"]) == pytest.approx(1.0, abs=1e-3)
    assert report["efficiency"] == pytest.approx(e2e["fps"] / report["pose_bound"]["fps"], rel=1e-2)
    assert "pose model alone (bound)" in to_markdown(report)
    cpu = {c["stage"]: c for c in report["cpu_time"]}
    assert {"decode", "detector"} <= set(cpu) and cpu["detector"]["frames"] == stages["detector"]["latency"]["n"]
    for c in cpu.values():  # one thread's CPU time cannot exceed the wall time it ran for
        assert 0 < c["cpu_mean_ms"] <= c["wall_mean_ms"] * 1.01 + 0.01, c
    assert "Wall vs CPU time" in to_markdown(report)
    assert report["settings"]["threads"] >= 1 and "no spin-waiting" in report["settings"]["thread_budget"]
    faster = copy.deepcopy(report)
    faster["end_to_end"]["fps"] *= 2  # a fabricated earlier run with twice the throughput
    flagged = [(c.item, c.metric) for c in compare(report, faster, 0.10) if c.regression]
    assert flagged == [("end-to-end", "frames/s")]


def test_live_mode_accounts_for_every_source_frame(clip: Path, tmp_path: Path) -> None:
    model = _tiny_onnx(tmp_path / "tiny.onnx", window=96)
    report = run_pipeline_bench(str(clip), str(model), pose="movenet", live=True)
    validate(report)
    e2e = report["end_to_end"]
    assert report["settings"]["live"] is True
    assert e2e["frames"] + e2e["dropped"] == FRAMES  # paced at 30 fps: what the loop missed is counted as dropped
    assert e2e["wall_s"] >= (FRAMES - 1) / 30.0 * 0.9


@pytest.mark.parametrize(
    "args,message",
    [
        (["pipeline", "missing.mp4", "--model", "{model}"], "missing.mp4"),
        (["pipeline", "{clip}", "--model", "missing.onnx"], "--model missing.onnx: no such model file"),
        (["pipeline", "{clip}", "--model", "{model}", "--backend", "tpu"], "--backend 'tpu'"),
        (["pipeline", "{clip}", "--model", "{model}", "--pose", "openpose"], "pose model 'openpose'"),
        (["pipeline", "{clip}", "--model", "{model}", "--frames", "0"], "--frames 0"),
        (["pipeline", "{clip}", "--model", "reference", "--pose", "movenet"], "needs heel and toe points"),
        (["pipeline", "{clip}", "--model", "{model}", "--pose-threads", "0"], "--pose-threads"),
        (
            ["pipeline", "{clip}", "--model", "{model}", "--compare", "{model_report}"],
            "a model report; --compare needs a pipeline report",
        ),
    ],
)
def test_pipeline_bad_input_exits_2(
    args: list[str],
    message: str,
    clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    model = _tiny_onnx(tmp_path / "tiny.onnx")
    model_report = Path(__file__).parents[2] / "bench" / "results" / "model-cpu.json"  # the committed one
    monkeypatch.setattr(
        sys, "argv", ["cpgait-bench", *[a.format(clip=clip, model=model, model_report=model_report) for a in args]]
    )
    with pytest.raises(SystemExit, match="^2$") as done:
        main()
    out = capsys.readouterr()
    assert done.value.code == 2
    assert message in out.err and "Traceback" not in out.err


def test_steady_fps_leaves_out_the_warm_up_results() -> None:
    """Five slow first results (session set-up, 100 ms apart), then 50 at 10 ms: the steady state is 100/s."""
    warm = [k * 100_000_000 for k in range(WARMUP_FRAMES)]
    steady = [warm[-1] + 100_000_000 + k * 10_000_000 for k in range(51)]
    assert _steady_fps(warm + steady, wall_s=1.0) == 100.0  # 50 intervals in exactly 0.5 s
    assert _steady_fps(warm + steady[:1], wall_s=2.0) == 3.0  # too short for a steady state: results / wall time
    assert _steady_fps(warm + steady[:2], wall_s=2.0) == pytest.approx(100.0)  # one interval after the warm-up
    assert _steady_fps([], wall_s=0.0) == 0.0
    assert _steady_fps([7] * 10, wall_s=0.5) == 20.0  # no time between the results: results / wall time
