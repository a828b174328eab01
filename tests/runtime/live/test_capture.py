"""Frame sources: files read whole and in order, live sources newest-frame-only with reconnect, clear errors."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.live import capture
from cpgait.runtime.live.capture import (
    Backoff,
    FileSource,
    LiveSource,
    SourceSpec,
    jetson_csi_pipeline,
    open_source,
)

FPS = 10.0
FRAMES = 20


def _write_video(path: Path, frames: int = FRAMES, fps: float = FPS) -> Path:
    """A small MJPG clip whose frame i is a flat grey of level 10 * i (decodes back within a few levels)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 10 * i, dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return _write_video(tmp_path / "clip.avi")


def test_file_source_gives_every_frame_in_order_with_index_timestamps(clip: Path) -> None:
    with open_source(clip) as source:
        assert isinstance(source, FileSource) and not source.is_live
        assert source.size == (64, 48) and source.fps == pytest.approx(FPS)
        frames = list(source)
    assert [f.index for f in frames] == list(range(FRAMES))
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(FRAMES)])
    levels = [float(f.image.mean()) for f in frames]
    assert levels == pytest.approx([10 * i for i in range(FRAMES)], abs=4)
    assert source.stats.frames_delivered == FRAMES


def test_a_given_frame_rate_replaces_the_files_and_the_decoder_takes_its_thread_budget(clip: Path) -> None:
    with open_source(clip, fps=25.0, decode_threads=1) as source:
        assert source.fps == 25.0
        frames = list(source)
    assert [f.timestamp for f in frames] == pytest.approx([i / 25.0 for i in range(FRAMES)])
    reader = capture.open_reader(SourceSpec("file", str(clip)), decode_threads=1)
    try:
        assert reader._cap.get(cv2.CAP_PROP_N_THREADS) == 1
    finally:
        reader.release()


@pytest.mark.parametrize("fps", [0.0, -5.0, float("nan"), float("inf"), 1000.0])
def test_a_frame_rate_that_is_not_one_is_refused(clip: Path, fps: float) -> None:
    with pytest.raises(CpgaitError, match=rf"{clip.name}: frame rate {fps!r}; expected more than 0"):
        open_source(clip, fps=fps)


def test_a_frame_rate_for_a_live_source_is_refused() -> None:
    with pytest.raises(CpgaitError, match="a frame rate can be given for video files only"):
        open_source("rtsp://127.0.0.1:1/none", fps=25.0)


def test_file_source_stops_at_max_frames(clip: Path) -> None:
    with FileSource(clip, prefetch=2, max_frames=5) as source:
        assert [f.index for f in source] == list(range(5))
    with open_source(clip, paced=True, max_frames=5) as source:
        assert max(f.index for f in source) == 4


def test_closing_a_half_read_file_releases_its_thread(clip: Path) -> None:
    source = FileSource(clip, prefetch=2)
    with source:
        first = next(iter(source))
    assert first.index == 0
    assert not source._thread.is_alive()  # closing unblocks and ends the decoder


def test_a_decoder_failure_is_an_error_not_the_end_of_the_file(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = FileSource(clip)
    real = source._reader.read
    calls = iter(range(100))

    def failing() -> object:
        if next(calls) == 3:
            raise RuntimeError("driver exploded")
        return real()

    monkeypatch.setattr(source._reader, "read", failing)
    with source, pytest.raises(CpgaitError, match="reading failed after 3 frame.*driver exploded"):
        list(source)


def test_a_file_named_with_an_exclamation_mark_is_a_file(tmp_path: Path) -> None:
    path = _write_video(tmp_path / "walk!.avi", fps=FPS)
    assert SourceSpec.parse(str(path)).kind == "file"


def test_paced_file_is_a_live_source_that_ends_at_the_end_of_the_file(tmp_path: Path) -> None:
    clip = _write_video(tmp_path / "fast.avi", fps=100.0)  # replayed in 0.2 s
    with open_source(clip, paced=True) as source:
        assert isinstance(source, LiveSource) and source.is_live
        frames = list(source)
    assert source.stats.frames_read == FRAMES
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    assert frames[-1].index == FRAMES - 1  # the newest frame is never lost, only older ones are skipped
    assert frames[-1].timestamp >= 0.8 * (FRAMES - 1) / 100.0  # replayed at its fps, not as fast as it decodes


@pytest.mark.parametrize(
    "text,kind,target",
    [
        ("0", "camera", 0),
        ("/dev/video2", "camera", 2),
        ("rtsp://10.0.0.5:554/stream", "url", "rtsp://10.0.0.5:554/stream"),
        ("http://cam.local/video.mjpg", "url", "http://cam.local/video.mjpg"),
        ("videotestsrc ! videoconvert ! appsink", "gstreamer", "videotestsrc ! videoconvert ! appsink"),
        ("walk.mp4", "file", "walk.mp4"),
    ],
)
def test_source_strings_are_classified(text: str, kind: str, target: object) -> None:
    spec = SourceSpec.parse(text)
    assert (spec.kind, spec.target) == (kind, target)


@pytest.mark.parametrize(
    "make_source,message",
    [
        (lambda tmp: str(tmp / "missing.mp4"), "missing.mp4: no such video file"),
        (lambda tmp: "ftp://example.org/walk.mp4", "unknown scheme 'ftp'"),
        (lambda tmp: _text_file(tmp / "notes.mp4"), "notes.mp4: could not be opened"),
        (lambda tmp: "/dev/video99", "camera 99: could not be opened"),
        (lambda tmp: "videotestsrc ! appsink", "GStreamer"),
    ],
)
def test_unopenable_sources_raise_an_error_naming_the_source(
    tmp_path: Path, make_source, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "Video I/O:\n    GStreamer:   NO\n")  # as on PyPI wheels
    with pytest.raises(CpgaitError, match=message.replace("(", r"\(")):
        open_source(make_source(tmp_path))


def _text_file(path: Path) -> str:
    path.write_text("not a video\n")
    return str(path)


def test_jetson_csi_pipeline_names_the_sensor_mode_and_flip() -> None:
    text = jetson_csi_pipeline(sensor_id=1, width=1920, height=1080, fps=60, flip=2)
    assert text.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=(int)1920, height=(int)1080, framerate=(fraction)60/1" in text
    assert "nvvidconv flip-method=2" in text and text.endswith("appsink drop=true max-buffers=1 sync=false")
    assert SourceSpec.parse(text).kind == "gstreamer"


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"flip": 9}, r"flip-method 9; expected 0-7"),
        ({"fps": 0}, r"sensor 0, 1280x720 @ 0 fps: expected sensor >= 0 and sizes > 0"),
        ({"sensor_id": -1}, r"sensor -1, 1280x720 @ 30 fps"),
        ({"width": 0}, r"sensor 0, 0x720 @ 30 fps"),
    ],
)
def test_jetson_csi_pipeline_rejects_bad_settings(kwargs: dict, expected: str) -> None:
    with pytest.raises(CpgaitError, match=expected):
        jetson_csi_pipeline(**kwargs)


class FakeReader:
    """A camera that delivers `frames` images; `hold_at` blocks the read of that frame until `release` is set."""

    fps = 30.0
    size = (8, 6)

    def __init__(self, frames: int, end: str = "finished", hold_at: int | None = None) -> None:
        self.frames, self.end, self.hold_at = frames, end, hold_at
        self.finished = False
        self.count = 0
        self.holding = threading.Event()
        self.release_event = threading.Event()
        self.released = False

    def read(self) -> np.ndarray | None:
        if self.count == self.hold_at:
            self.holding.set()
            self.release_event.wait(10)
        if self.count >= self.frames:
            self.finished = self.end == "finished"
            return None
        self.count += 1
        return np.full((6, 8, 3), self.count % 256, dtype=np.uint8)

    def release(self) -> None:
        self.released = True


def test_a_connection_that_completes_after_close_is_released(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "CLOSE_TIMEOUT_S", 0.05)  # close() returns before the connection completes
    connecting, connected = threading.Event(), threading.Event()
    late = FakeReader(5)

    def opener() -> FakeReader:
        if not connecting.is_set() and late.count == 0 and opener.calls:  # the reconnect: a slow RTSP connect
            connecting.set()
            connected.wait(10)
            return late
        opener.calls += 1
        return FakeReader(2, end="dropped")

    opener.calls = 0
    source = LiveSource("fake stream", opener, Backoff(initial_s=0.01, max_s=0.02))
    assert connecting.wait(10)
    source.close()
    connected.set()  # the connection completes after close() has returned
    source._thread.join(10)
    assert late.released and not source._thread.is_alive()


def test_live_source_hands_the_newest_frame_and_skips_the_backlog() -> None:
    reader = FakeReader(20, hold_at=11)  # frames 0-10 are published, then the camera pauses
    with LiveSource("fake camera", lambda: reader) as source:
        assert reader.holding.wait(10)
        frames = iter(source)
        newest = next(frames)  # a slow consumer arrives late: it gets frame 10, not frame 0
        reader.release_event.set()
        rest = list(frames)
    assert newest.index == 10
    indices = [newest.index] + [f.index for f in rest]
    assert indices == sorted(set(indices)) and indices[-1] == 19
    # every one of the 20 frames was either delivered or counted as skipped, none twice
    assert source.stats.frames_delivered == len(indices) and source.stats.frames_skipped == 20 - len(indices) >= 10
    assert source.stats.frames_read == 20


def test_live_source_reconnects_with_back_off_after_a_drop() -> None:
    attempts: list[str] = []

    def opener() -> FakeReader:
        attempts.append("open")
        if len(attempts) == 1:
            return FakeReader(3, end="dropped")
        if len(attempts) == 2:
            raise CpgaitError("fake camera: could not be opened")
        return FakeReader(3, end="finished")

    with LiveSource("fake camera", opener, Backoff(initial_s=0.01, max_s=0.02)) as source:
        frames = list(source)
    assert len(attempts) == 3
    assert source.stats.reconnects == 1 and source.stats.frames_read == 6
    assert "could not be opened" in source.stats.errors[0]
    assert frames[-1].index == 5  # indices keep counting across the reconnect
    assert all(b.timestamp >= a.timestamp for a, b in zip(frames, frames[1:]))


def test_live_source_gives_up_after_its_attempts() -> None:
    readers = iter([FakeReader(2, end="dropped")])

    def opener() -> FakeReader:
        reader = next(readers, None)
        if reader is None:
            raise CpgaitError("fake camera: gone")
        return reader

    with LiveSource("fake camera", opener, Backoff(initial_s=0.01, max_s=0.01, attempts=2)) as source:
        list(source)
    assert source.stats.reconnects == 0
    assert source.stats.errors[-1] == "fake camera: gave up after 2 reconnect attempt(s)"


def test_first_connection_failure_is_an_error_not_a_retry() -> None:
    def opener() -> FakeReader:
        raise CpgaitError("camera 3: could not be opened (no such camera, or it is in use)")

    with pytest.raises(CpgaitError, match="camera 3"):
        LiveSource("camera 3", opener)


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, None),
        ({"initial_s": 0}, r"back-off 0\.\.8\.0 s; expected 0 < initial <= max"),
        ({"initial_s": 2, "max_s": 1}, r"back-off 2\.\.1 s"),
        ({"attempts": -1}, "reconnect attempts -1; expected >= 0"),
    ],
)
def test_backoff_doubles_up_to_its_cap(kwargs: dict, expected: str | None) -> None:
    if expected is not None:
        with pytest.raises(CpgaitError, match=expected):
            Backoff(**kwargs)
        return
    backoff = Backoff(**kwargs)
    assert [backoff.delay(k) for k in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_closing_a_live_source_ends_a_wait_for_a_stalled_camera() -> None:
    reader = FakeReader(100, hold_at=3)  # the camera stalls after three frames
    source = LiveSource("fake camera", lambda: reader)
    assert reader.holding.wait(10)
    frames = iter(source)
    first = next(frames)
    rest: list = []
    done = threading.Event()

    def consume() -> None:
        rest.extend(frames)  # waits for a fourth frame that does not come
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    closer = threading.Thread(target=source.close, daemon=True)
    closer.start()
    assert done.wait(10)  # the consumer stopped waiting although the camera never delivered again
    reader.release_event.set()
    closer.join(10)
    assert first.index == 2 and rest == []


def test_a_live_source_that_does_not_say_its_size_takes_it_from_the_first_frame() -> None:
    reader = FakeReader(5)
    reader.size = (0, 0)
    with LiveSource("fake stream", lambda: reader) as source:
        assert source.size == (8, 6)
        assert [f.index for f in source][-1] == 4
