"""`cpgait run` / `cpgait pose` never lose a user's data: paths checked before any work, outputs replaced only by
complete ones, SIGTERM / SIGINT end the run with finished outputs and a telling exit code, a truncated video is
reported."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.app.run import EXIT_INCOMPLETE_SOURCE, RunOptions, run_live
from cpgait.runtime.live.capture import FileSource

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / ".cache" / "demo.mp4"
MODEL = ROOT / "runtime" / "assets" / "reference.onnx"
pytestmark = pytest.mark.skipif(not DEMO.is_file(), reason="demo clip missing: `make test` downloads it")


def _cli(*args: str) -> list[str]:
    code = f"import sys; sys.argv = ['cpgait', *{list(args)!r}]; from cpgait.cli import main; main()"
    return [sys.executable, "-c", code]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "case,words",
    [
        ("out is the input", "same file as the input"),
        ("events is the input", "same file as the input"),
        ("events is the model", "same file as the input"),
        ("out is events", "same file as the output"),
        ("events under a file", "cannot write there"),
        ("record is the input", "same file as the input"),
    ],
)
def test_run_refuses_destructive_or_unwritable_paths_before_any_work(tmp_path: Path, case: str, words: str) -> None:
    video = tmp_path / "walk.mp4"
    video.write_bytes(DEMO.read_bytes())
    model = tmp_path / "model.onnx"
    model.write_bytes(MODEL.read_bytes())
    before = _digest(video), _digest(model)
    args = ["run", str(video), "--model", str(model), "--overwrite", "--max-frames", "2"]
    args += {
        "out is the input": ["--out", str(video)],
        "events is the input": ["--events", str(video)],
        "events is the model": ["--events", str(model)],
        "out is events": ["--out", str(tmp_path / "o.mp4"), "--events", str(tmp_path / "o.mp4")],
        "events under a file": ["--events", str(video / "events.jsonl")],
        "record is the input": ["--record", str(video)],
    }[case]
    done = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and words in done.stderr and done.stderr.count("\n") == 1
    assert (_digest(video), _digest(model)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "walk.mp4"]


def test_pose_refuses_its_input_as_output_and_a_bad_output_before_reading(tmp_path: Path) -> None:
    video = tmp_path / "walk.mp4"
    video.write_bytes(DEMO.read_bytes())
    (tmp_path / "file").write_text("x")
    for out, words in ((tmp_path / "file" / "seq.npz", "cannot write there"), (video, "sequence files end in .npz")):
        done = subprocess.run(_cli("pose", str(video), "-o", str(out), "--overwrite"), capture_output=True, text=True)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
    link = tmp_path / "walk.npz"
    link.symlink_to(video)
    done = subprocess.run(_cli("pose", str(video), "-o", str(link), "--overwrite"), capture_output=True, text=True)
    assert done.returncode == 2 and "same file as the input" in done.stderr
    assert video.read_bytes() == DEMO.read_bytes()


def test_a_failing_run_leaves_the_previous_outputs_untouched(tmp_path: Path) -> None:
    out, events = tmp_path / "overlay.mp4", tmp_path / "events.jsonl"
    out.write_bytes(b"the previous overlay")
    events.write_text('{"type":"summary"}\n')
    seen = []

    def fail(report: object, picture: object) -> None:
        seen.append(report)
        if len(seen) == 3:
            raise RuntimeError("disk full, say")

    options = RunOptions(
        source=str(DEMO), model=str(MODEL), out=str(out), events=str(events), overwrite=True, max_frames=10
    )
    with pytest.raises(RuntimeError, match="disk full"):
        run_live(options, on_report=fail)
    assert out.read_bytes() == b"the previous overlay" and events.read_text() == '{"type":"summary"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "overlay.mp4"]  # no temporary left


def test_a_bad_model_is_refused_before_outputs_are_touched(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    events = tmp_path / "events.jsonl"
    events.write_text("previous\n")
    with pytest.raises(CpgaitError, match="bad.onnx"):
        run_live(RunOptions(source=str(DEMO), model=str(bad), events=str(events), overwrite=True))
    assert events.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.onnx",
        "events.jsonl",
    ]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_run_with_finished_outputs(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    out, events = tmp_path / "overlay.mp4", tmp_path / "events.jsonl"
    args = ["run", str(DEMO), "--loop", "--model", str(MODEL), "--out", str(out), "--events", str(events)]
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / f".overlay.{proc.pid}.part.mp4"
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if partial.is_file() and partial.stat().st_size > 0:  # the loop is writing overlay frames
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        assert not events.exists() and not out.exists()  # in place only when finished
        time.sleep(1.0)  # some overlay frames
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert f"stopped by {sig.name}" in stdout and "Traceback" not in stderr
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "summary"
    assert lines[-1]["stopped_by"] == sig.name and lines[-1]["exit_code"] == code
    cap = cv2.VideoCapture(str(out))
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    cap.release()
    assert decoded >= 1 and decoded == lines[-1]["frames"]  # the container is finalised: every frame decodes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "overlay.mp4"]


def _truncated(tmp_path: Path, share: float) -> Path:
    data = DEMO.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * share)])
    return path


def test_a_truncated_file_is_flagged_and_a_whole_one_is_not(tmp_path: Path) -> None:
    with FileSource(_truncated(tmp_path, 0.5)) as source:
        frames = sum(1 for _ in source)
    assert 0 < frames < 230 and f"after {frames} of the 230 frames" in source.stats.incomplete
    with FileSource(DEMO) as whole:
        assert sum(1 for _ in whole) == 230 and whole.stats.incomplete is None
    with FileSource(DEMO, max_frames=5) as part:  # a frame limit is not a truncation
        assert sum(1 for _ in part) == 5 and part.stats.incomplete is None


def test_run_on_a_truncated_file_warns_and_exits_3(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    args = ["run", str(_truncated(tmp_path, 0.12)), "--model", str(MODEL), "--events", str(events)]
    done = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_INCOMPLETE_SOURCE, done.stderr
    assert "warning: " in done.stdout and "truncated or damaged" in done.stdout
    summary = json.loads(events.read_text().splitlines()[-1])
    assert summary["source_incomplete"] and summary["exit_code"] == EXIT_INCOMPLETE_SOURCE
