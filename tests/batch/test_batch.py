"""`cpgait batch` on a real local Ray: the kiosk's answers for every clip, bad files reported, reruns do no work,
and a worker that dies fails only its own video after bounded retries."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cpgait.batch.inputs import BatchItem, read_inputs
from cpgait.batch.scheduler import SUMMARY, PoolSettings, run_batch
from cpgait.batch.store import EVENTS, SEQUENCE
from cpgait.batch.worker import BatchSettings, VideoWorker
from cpgait.cli import app
from cpgait.errors import CpgaitError
from cpgait.runtime.core.sequence import KeypointSequence

STRIDE = "8"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting one takes seconds); `run_batch` joins it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'cpgait[batch]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_batch_gives_the_kiosks_answers_reports_bad_files_and_reruns_nothing(
    clips: Path, tiny_onnx: Path, tmp_path: Path, local_ray
) -> None:
    out = tmp_path / "results"
    settings = BatchSettings(model=str(tiny_onnx), stride=int(STRIDE))
    report = run_batch(str(clips), settings, str(out), PoolSettings(workers=2))

    rows = {Path(r["path"]).name: r for r in csv.DictReader((out / SUMMARY).open())}
    assert {n: r["status"] for n, r in rows.items()} == {
        "broken.mp4": "failed",
        "empty.mp4": "no_subject",
        "walk100.mp4": "ok",
        "walk140.mp4": "ok",
    }
    assert "could not be opened (not a video OpenCV can decode)" in rows["broken.mp4"]["error"]
    assert "no walking subject found" in rows["empty.mp4"]["error"]
    readable = ("walk100.mp4", "walk140.mp4", "empty.mp4")
    frames = sum(int(cv2.VideoCapture(str(clips / n)).get(cv2.CAP_PROP_FRAME_COUNT)) for n in readable)
    assert report.processed == 3 and report.frames == frames and report.workers == 2
    assert report.stage_s["pose"] > 0

    cli = CliRunner()
    for name in ("walk100.mp4", "walk140.mp4"):
        folder = Path(rows[name]["folder"])
        video = str(clips / name)
        done = cli.invoke(app, ["pose", video, "-o", str(tmp_path / f"{name}.npz")])
        assert done.exit_code == 0, done.output
        expected = KeypointSequence.load(tmp_path / f"{name}.npz")
        got = KeypointSequence.load(folder / SEQUENCE)
        assert got.keypoints.shape == expected.keypoints.shape and got.num_frames > 20
        np.testing.assert_allclose(got.keypoints, expected.keypoints, atol=1e-6, rtol=0)
        assert (got.fps, got.image_size, got.layout, got.source) == (
            expected.fps,
            expected.image_size,
            expected.layout,
            expected.source,
        )

        events = tmp_path / f"{name}.jsonl"
        done = cli.invoke(app, ["run", video, "--model", str(tiny_onnx), "--events", str(events), "--stride", STRIDE])
        assert done.exit_code == 0, done.output
        kiosk = [json.loads(line) for line in events.read_text().splitlines()]
        batch = [json.loads(line) for line in (folder / EVENTS).read_text().splitlines()]
        kiosk_windows = [e for e in kiosk if e["type"] == "window"]
        batch_windows = [e for e in batch if e["type"] == "window"]
        assert len(kiosk_windows) >= 2 and len(batch_windows) == len(kiosk_windows)
        for k, b in zip(kiosk_windows, batch_windows):
            assert (k["frame"], k["class"]) == (b["frame"], b["class"])
            np.testing.assert_allclose(list(b["probabilities"].values()), list(k["probabilities"].values()), atol=1e-6)
        k_session, b_session = kiosk[-1]["session"], batch[-1]["session"]
        assert b_session["class"] == k_session["class"] and b_session["windows"] == k_session["windows"]
        np.testing.assert_allclose(
            list(b_session["probabilities"].values()), list(k_session["probabilities"].values()), atol=1e-6
        )
        assert [e["type"] for e in batch] == [e["type"] for e in kiosk]  # start, subject, windows, summary

    stamps = {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*")}
    again = cli.invoke(app, ["batch", str(clips), "--model", str(tiny_onnx), "--out", str(out), "--stride", STRIDE])
    assert again.exit_code == 0, again.output
    assert "3 already done, 0 run now" in again.output and "broken.mp4: could not be opened" in again.output
    assert {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*")} == stamps
    assert [r["status"] for r in csv.DictReader((out / SUMMARY).open())] == [r["status"] for r in rows.values()]


class DyingWorker(VideoWorker):
    """A worker whose process dies on any video named crash*.mp4 (as a decoder segfault would kill it)."""

    def process(self, item: BatchItem, key: str, attempt: int) -> dict:
        if Path(item.path).name.startswith("crash"):
            os._exit(1)
        return super().process(item, key, attempt)


def test_a_dying_worker_fails_only_its_video_after_bounded_retries(
    clips: Path, tiny_onnx: Path, tmp_path: Path, local_ray
) -> None:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(__import__(__name__))  # the test module is not importable by workers
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("crash.mp4", "calm.mp4"):
        (folder / name).write_bytes((clips / "empty.mp4").read_bytes())
    out = tmp_path / "results"
    settings = BatchSettings(model=str(tiny_onnx))
    report = run_batch(str(folder), settings, str(out), PoolSettings(workers=2, retries=1), worker=DyingWorker)
    rows = {Path(r["path"]).name: r for r in report.rows}
    assert rows["calm.mp4"]["status"] == "no_subject"
    crash = rows["crash.mp4"]
    assert crash["status"] == "failed" and crash["attempts"] == 2
    assert crash["error"].startswith("worker failed 2 time(s); last: ")
    stored = json.loads((Path(crash["folder"]) / "result.json").read_text())
    assert stored["status"] == "failed" and stored["error"] == crash["error"]


def test_a_manifest_names_paths_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,subject,label,fps\na.mp4,s1,2,25\n/elsewhere/b.mp4,,,\n")
    assert read_inputs(manifest) == [
        BatchItem(str((tmp_path / "a.mp4").resolve()), "s1", "2", 25.0),
        BatchItem("/elsewhere/b.mp4"),
    ]


def test_a_manifest_fps_overrides_the_container_as_run_and_pose_fps_do(
    clips: Path, tiny_onnx: Path, tmp_path: Path, local_ray
) -> None:
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path,fps\n{clips / 'walk100.mp4'},15\n")
    out = tmp_path / "results"
    report = run_batch(
        str(manifest), BatchSettings(model=str(tiny_onnx), stride=int(STRIDE)), str(out), PoolSettings(workers=1)
    )
    [row] = report.rows
    assert row["status"] == "ok" and row["fps"] == 15.0
    got = KeypointSequence.load(Path(row["folder"]) / SEQUENCE)
    cli = CliRunner()
    done = cli.invoke(app, ["pose", str(clips / "walk100.mp4"), "-o", str(tmp_path / "p.npz"), "--fps", "15"])
    assert done.exit_code == 0, done.output
    expected = KeypointSequence.load(tmp_path / "p.npz")
    assert got.fps == expected.fps == 15.0
    np.testing.assert_allclose(got.timestamps, expected.timestamps, atol=1e-9, rtol=0)
    assert got.timestamps[-1] == pytest.approx(got.frame_index[-1] / 15.0)
    events = tmp_path / "e.jsonl"
    run = ["run", str(clips / "walk100.mp4"), "--model", str(tiny_onnx), "--events", str(events), "--stride", STRIDE]
    done = cli.invoke(app, [*run, "--fps", "15"])
    assert done.exit_code == 0, done.output
    kiosk = [json.loads(line) for line in events.read_text().splitlines()]
    batch = [json.loads(line) for line in (Path(row["folder"]) / EVENTS).read_text().splitlines()]
    assert [e.get("time_s") for e in batch if e["type"] == "window"] == [
        e.get("time_s") for e in kiosk if e["type"] == "window"
    ]
    # the same video at its stated 30 fps is another result (the frame rate is part of the key)
    manifest.write_text(f"path\n{clips / 'walk100.mp4'}\n")
    again = run_batch(
        str(manifest), BatchSettings(model=str(tiny_onnx), stride=int(STRIDE)), str(out), PoolSettings(workers=1)
    )
    assert again.processed == 1 and again.rows[0]["key"] != row["key"]


@pytest.mark.parametrize(
    "text,match",
    [
        ("video,label\na.mp4,1\n", "expected path and optionally subject, label, fps"),
        ("path\na.mp4\na.mp4\n", "is listed twice"),
        ("path\n", "lists no videos"),
        ("path\n\n,\n", "line 2: the path is empty"),
        ("path,fps\na.mp4,fast\n", "line 2: fps 'fast'; expected a number of frames/s"),
        ("path,fps\na.mp4,0\n", "line 2: .*a.mp4: frame rate 0.0; expected more than 0"),
        ("path,fps\na.mp4,nan\n", "line 2: .*frame rate nan"),
    ],
)
def test_a_bad_manifest_is_refused_with_the_reason(tmp_path: Path, text: str, match: str) -> None:
    manifest = tmp_path / "list.csv"
    manifest.write_text(text)
    with pytest.raises(CpgaitError, match=match):
        read_inputs(manifest)


def test_an_empty_folder_or_other_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CpgaitError, match="no video files"):
        read_inputs(tmp_path)
    with pytest.raises(CpgaitError, match="expected a folder of videos or a CSV manifest"):
        read_inputs(tmp_path / "x.txt")
