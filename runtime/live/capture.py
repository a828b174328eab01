"""Frame sources: video files, V4L2 cameras, RTSP/HTTP streams and GStreamer pipelines (e.g. a Jetson CSI camera).

Two behaviours, because they answer different questions:
- a **file** is read completely and in order (every frame, timestamp = index / fps): offline analysis and
  `cpgait pose` must see the whole recording; a decode thread reads ahead into a small bounded queue.
- a **live** source (camera, stream, pipeline, or a file replayed with `paced=True` at its own fps as if it were a
  camera) is read by a thread that keeps only the newest frame: a slow consumer skips frames instead of building a
  backlog, so the result always describes the present. Timestamps are monotonic seconds since the source opened;
  when the source drops, the thread reconnects with exponential back-off.

Every frame carries `captured_ns` (`time.perf_counter_ns()` when it became available), the reference for the
capture-to-result latency.
"""

from __future__ import annotations

import abc
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from cpgait.errors import CpgaitError

if TYPE_CHECKING:
    import cv2

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")
DEFAULT_FILE_FPS = 30.0  # for the rare file that stores no frame rate
MAX_FPS = 1000.0  # a stated or given frame rate at or above this is not believed
FIRST_FRAME_TIMEOUT_S = 10.0  # a live source that does not say its size must show a frame within this
CLOSE_TIMEOUT_S = 5.0  # close() waits this long for the reader thread, which then releases the device
STREAM_TIMEOUT_S = 5.0  # an RTSP/HTTP stream silent this long is lost: the reader reconnects
MAX_GAPS_KEPT = 100  # reconnect gaps listed in the stats (the count is `reconnects`)
TRUNCATION_SHARE = 0.02  # a file may deliver this share (plus one frame) fewer frames than its container states


@dataclass(frozen=True)
class Frame:
    """One image from a source: `index` counts the source's frames (gaps are frames a live reader skipped)."""

    index: int
    timestamp: float
    image: np.ndarray
    captured_ns: int
    decode_ns: int = 0  # time spent reading/decoding this frame
    decode_cpu_ns: int = 0  # CPU time of the reading thread meanwhile (FFmpeg's own decoder threads not included)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"frame {self.index}: image {self.image.shape} {self.image.dtype}; expected [H, W, 3] uint8"
            )
        if self.index < 0 or not np.isfinite(self.timestamp):
            raise ValueError(f"frame index {self.index} / timestamp {self.timestamp} are not valid")


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: `initial_s`, doubled after each failed attempt up to `max_s`; `attempts=None` = forever."""

    initial_s: float = 0.5
    max_s: float = 8.0
    attempts: int | None = None

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s):
            raise CpgaitError(f"back-off {self.initial_s}..{self.max_s} s; expected 0 < initial <= max")
        if self.attempts is not None and self.attempts < 0:
            raise CpgaitError(f"reconnect attempts {self.attempts}; expected >= 0 or none (forever)")

    def delay(self, failures: int) -> float:
        """Seconds to wait before attempt number `failures + 1`."""
        return min(self.initial_s * 2.0**failures, self.max_s)


@dataclass
class CaptureStats:
    """What a source did: frames delivered, frames a live reader replaced before anyone took them, reconnects."""

    frames_read: int = 0
    frames_delivered: int = 0
    frames_skipped: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    incomplete: str | None = None  # a file that ended before the frame count its container states (truncated)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # live: (from, to) seconds without frames


def jetson_csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """The GStreamer pipeline for a Jetson CSI camera (nvarguscamerasrc), ending in a BGR appsink for OpenCV.

    `flip` is nvvidconv's flip-method (0 none, 2 rotate 180, 4 horizontal mirror, ...). The appsink keeps one
    buffer and drops older ones, like the live reader. Needs OpenCV built with GStreamer (JetPack's OpenCV is);
    pass the string as the SOURCE of `cpgait run`.
    """
    if sensor_id < 0 or width <= 0 or height <= 0 or fps <= 0:
        raise CpgaitError(
            f"CSI camera sensor {sensor_id}, {width}x{height} @ {fps} fps: expected sensor >= 0 and sizes > 0"
        )
    if flip not in range(8):
        raise CpgaitError(f"flip-method {flip}; expected 0-7 (nvvidconv)")
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, framerate=(fraction){fps}/1, "
        f"format=(string)NV12 ! nvvidconv flip-method={flip} ! video/x-raw, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1 sync=false"
    )


@dataclass(frozen=True)
class SourceSpec:
    """What the user's SOURCE string means: kind is file, camera, url or gstreamer."""

    kind: str
    target: str | int

    @classmethod
    def parse(cls, source: str | int | Path) -> SourceSpec:
        if isinstance(source, int):
            return cls("camera", source)
        text = str(source).strip()
        if re.fullmatch(r"\d+", text):
            return cls("camera", int(text))
        if re.fullmatch(r"/dev/video\d+", text):
            return cls("camera", int(text[len("/dev/video") :]))
        if "!" in text and not Path(text).is_file():  # "walk!.mp4" is a file, not a pipeline
            return cls("gstreamer", text)
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme in URL_SCHEMES:
            return cls("url", text)
        if scheme:
            raise CpgaitError(f"source {text!r}: unknown scheme {scheme!r}; expected one of {', '.join(URL_SCHEMES)}")
        return cls("file", text)

    def describe(self) -> str:
        return {
            "camera": f"camera {self.target}",
            "file": f"{self.target}",
            "url": f"stream {self.target}",
            "gstreamer": f"GStreamer pipeline {self.target!r}",
        }[self.kind]


class Reader(Protocol):
    """A connected device: `read()` returns a BGR image or None (dropped, or `finished` at the end of a file)."""

    fps: float
    size: tuple[int, int]
    finished: bool

    def read(self) -> np.ndarray | None: ...

    def release(self) -> None: ...


class _CvReader:
    """cv2.VideoCapture behind the Reader protocol."""

    def __init__(self, capture: cv2.VideoCapture, is_file: bool, fps: float | None = None) -> None:
        import cv2

        self._cap = capture
        self.is_file = is_file
        self.finished = False
        if fps is None:
            fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            fps = fps if np.isfinite(fps) and 0 < fps < MAX_FPS else (DEFAULT_FILE_FPS if is_file else 0.0)
        self.fps = fps
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        self.frame_count = int(count) if is_file and np.isfinite(count) and 0 < count < 1e9 else None
        self.frames = 0
        self.incomplete: str | None = None

    def read(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            self.finished = self.is_file
            tolerance = 1 + int(TRUNCATION_SHARE * (self.frame_count or 0))
            if self.is_file and self.frame_count and self.frames < self.frame_count - tolerance:
                self.incomplete = (
                    f"the file ended after {self.frames} of the {self.frame_count} frames its container states "
                    "(truncated or damaged part-way)"
                )
            return None
        self.frames += 1
        if image.ndim == 2:  # some cameras deliver grey frames
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return image

    def release(self) -> None:
        self._cap.release()


def check_fps(fps: float | None, what: str) -> None:
    """A frame rate given for a file (overriding its container's) must be a number of frames per second."""
    if fps is not None and not (np.isfinite(fps) and 0 < fps < MAX_FPS):
        raise CpgaitError(f"{what}: frame rate {fps!r}; expected more than 0 and less than {MAX_FPS:g} frames/s")


def _check_given_fps(spec: SourceSpec, fps: float | None) -> None:
    """A frame rate given for `spec`: a valid one, and for a video file only."""
    check_fps(fps, spec.describe())
    if fps is not None and spec.kind != "file":
        raise CpgaitError(
            f"{spec.describe()}: a frame rate can be given for video files only; a live source has its own"
        )


def open_reader(spec: SourceSpec, decode_threads: int | None = None, fps: float | None = None) -> _CvReader:
    """Connect to the device or file; a source that cannot be opened is a CpgaitError naming it.

    `decode_threads` sets FFmpeg's decoder threads for files and streams (OpenCV's `CAP_PROP_N_THREADS`; None:
    FFmpeg's choice, one per core), so that decoding keeps to its share of the thread budget. `fps` (files only)
    replaces the frame rate the container states, for files whose header is wrong (e.g. slow-motion recordings)."""
    import cv2

    what = spec.describe()
    _check_given_fps(spec, fps)
    threads = [] if decode_threads is None else [cv2.CAP_PROP_N_THREADS, decode_threads]
    if spec.kind == "file":
        path = Path(str(spec.target))
        if not path.is_file():
            raise CpgaitError(f"{path}: no such video file")
        cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, threads)
    elif spec.kind == "camera":
        cap = cv2.VideoCapture(int(spec.target), cv2.CAP_V4L2)
    elif spec.kind == "gstreamer":
        if "GStreamer:                   YES" not in cv2.getBuildInformation():
            raise CpgaitError(
                f"{what}: this OpenCV ({cv2.__version__}) was built without GStreamer; use JetPack's OpenCV on a Jetson"
            )
        cap = cv2.VideoCapture(str(spec.target), cv2.CAP_GSTREAMER)
    else:  # a stream that stalls for STREAM_TIMEOUT_S counts as lost (FFmpeg's own default is 30 s)
        ms = int(STREAM_TIMEOUT_S * 1000)
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, timeouts + threads)
    if not cap.isOpened():
        cap.release()
        hint = {
            "camera": " (no such camera, or it is in use)",
            "file": " (not a video OpenCV can decode)",
            "url": " (unreachable, or not a video stream)",
            "gstreamer": " (the pipeline did not start)",
        }[spec.kind]
        raise CpgaitError(f"{what}: could not be opened{hint}")
    return _CvReader(cap, is_file=spec.kind == "file", fps=fps)


class VideoSource(abc.ABC):
    """Iterate frames; use as a context manager so reader threads and devices are released."""

    name: str
    fps: float
    size: tuple[int, int]
    is_live: bool

    def __init__(self) -> None:
        self.stats = CaptureStats()
        self._failure: Exception | None = None  # set by a reader thread that died of an error

    def _raise_failure(self) -> None:
        """A reader thread's error, after the frames read before it: never a silent end of the source."""
        if self._failure is not None:
            raise CpgaitError(
                f"{self.name}: reading failed after {self.stats.frames_read} frame(s): {self._failure}"
            ) from None

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END = object()


class FileSource(VideoSource):
    """Every frame of a video file, in order; a decode thread reads up to `prefetch` frames ahead."""

    is_live = False

    def __init__(
        self,
        path: str | Path,
        prefetch: int = 4,
        max_frames: int | None = None,
        decode_threads: int | None = None,
        fps: float | None = None,
    ) -> None:
        super().__init__()
        self.name = str(path)
        self._reader = open_reader(SourceSpec("file", str(path)), decode_threads, fps)
        self.fps = self._reader.fps
        self.size = self._reader.size
        self.max_frames = max_frames
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _decode(self) -> None:
        index = 0
        try:
            while not self._stop.is_set() and (self.max_frames is None or index < self.max_frames):
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                image = self._reader.read()
                if image is None:
                    break
                now = time.perf_counter_ns()
                frame = Frame(index, index / self.fps, image, now, now - t0, time.thread_time_ns() - c0)
                self.stats.frames_read += 1
                while not self._stop.is_set():
                    try:
                        self._queue.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                index += 1
        except Exception as exc:  # a decoder or driver error must not look like the end of the file
            self._failure = exc
        finally:
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self._queue.put(_END, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise CpgaitError(f"{self.name}: a file source is read once; open it again to re-read")
        self._thread = threading.Thread(target=self._decode, name="cpgait-decode", daemon=True)
        self._thread.start()
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set() and not self._thread.is_alive():
                    return  # closed while being read
                continue
            if item is _END:
                break
            self.stats.frames_delivered += 1
            yield item
        self._raise_failure()
        if self.stats.frames_read == 0:
            raise CpgaitError(f"{self.name}: no frame could be decoded (corrupt file or unsupported codec)")
        self.stats.incomplete = self._reader.incomplete

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():  # unblock a decoder waiting on a full queue
                try:
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._thread.join()
        self._reader.release()


class _PacedFileReader:
    """A file that releases each frame at its own time (start + index / fps), as a camera would; with `loop` it
    starts again from its first frame at its end, for ever (a soak test's endless camera)."""

    def __init__(
        self,
        path: str | Path,
        max_frames: int | None = None,
        loop: bool = False,
        decode_threads: int | None = None,
        fps: float | None = None,
    ) -> None:
        self._path = str(path)
        self.loop = loop
        self.loops = 0
        self._open = lambda: open_reader(SourceSpec("file", self._path), decode_threads, fps)
        self._inner = self._open()
        self.fps = self._inner.fps
        self.size = self._inner.size
        self.finished = False
        self.max_frames = max_frames
        self._index = 0
        self._start: float | None = None
        self.last_wait_ns = 0  # pacing sleep inside the last read (not decoding time)

    @property
    def incomplete(self) -> str | None:
        return self._inner.incomplete

    def read(self) -> np.ndarray | None:
        if self.max_frames is not None and self._index >= self.max_frames:
            self.finished = True
            return None
        image = self._inner.read()
        if image is None and self.loop and self._inner.frames > 0 and self._inner.incomplete is None:
            self._inner.release()
            self._inner = self._open()
            self.loops += 1
            image = self._inner.read()
        if image is None:
            self.finished = True
            return None
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        wait = self._start + self._index / self.fps - now
        self.last_wait_ns = int(max(wait, 0.0) * 1e9)
        if wait > 0:
            time.sleep(wait)
        self._index += 1
        return image

    def release(self) -> None:
        self._inner.release()


class LiveSource(VideoSource):
    """A reader thread keeps only the newest frame; iteration yields each new frame once, skipping stale ones.

    `opener()` connects (raising CpgaitError when it cannot); it is called again with `backoff` delays when the
    device stops delivering. A reader that says `finished` (a paced file at its end) ends the stream instead.
    """

    is_live = True

    def __init__(self, name: str, opener: Callable[[], Reader], backoff: Backoff = Backoff()) -> None:
        super().__init__()
        self.name = name
        self.backoff = backoff
        self._opener = opener
        self._reader = opener()  # the first connection fails loudly: no camera is a user error
        self.fps = float(self._reader.fps)
        width, height = self._reader.size
        self.size = (int(width), int(height))
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="cpgait-capture", daemon=True)
        self._thread.start()
        if min(self.size) <= 0:  # some streams say their size only with the first frame
            first = self.read(timeout=FIRST_FRAME_TIMEOUT_S)
            if first is None:
                self.close()
                raise CpgaitError(f"{name}: delivered no frame within {FIRST_FRAME_TIMEOUT_S:g} s")
            self.size = (first.image.shape[1], first.image.shape[0])

    def _publish(self, frame: Frame | None) -> None:
        with self._cond:
            if frame is None:
                self._ended = True
            else:
                self._latest = frame
            self._cond.notify_all()

    def _reconnect(self) -> bool:
        """Reopen with back-off until it works, attempts run out, or the source is closed."""
        failures = 0
        while not self._stop.is_set():
            if self.backoff.attempts is not None and failures >= self.backoff.attempts:
                self.stats.errors.append(f"{self.name}: gave up after {failures} reconnect attempt(s)")
                return False
            if self._stop.wait(self.backoff.delay(failures)):
                return False
            try:
                reader = self._opener()
            except CpgaitError as exc:
                failures += 1
                if len(self.stats.errors) < 100:
                    self.stats.errors.append(str(exc))
                continue
            if self._stop.is_set():  # closed while connecting (an RTSP connect can take half a minute)
                reader.release()
                return False
            self._reader = reader
            self.stats.reconnects += 1
            return True
        return False

    def _run(self) -> None:
        """The reader thread: it alone reads and releases the reader (close() only asks it to stop)."""
        index = 0
        try:
            while not self._stop.is_set():
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                image = self._reader.read()
                if image is None:
                    finished = self._reader.finished
                    self.stats.incomplete = getattr(self._reader, "incomplete", None)
                    self._reader.release()
                    if finished:
                        break
                    lost = time.monotonic() - self._t0
                    if not self._reconnect():
                        break
                    if len(self.stats.gaps) < MAX_GAPS_KEPT:
                        self.stats.gaps.append((round(lost, 3), round(time.monotonic() - self._t0, 3)))
                    continue
                self.stats.frames_read += 1
                now = time.perf_counter_ns()
                decode = now - t0 - getattr(self._reader, "last_wait_ns", 0)
                cpu = time.thread_time_ns() - c0
                self._publish(Frame(index, time.monotonic() - self._t0, image, now, decode, cpu))
                index += 1
        except Exception as exc:  # a driver error must not look like the end of the stream
            self._failure = exc
        finally:
            self._reader.release()  # releasing twice is harmless (cv2 and the paced reader allow it)
            self._publish(None)

    def read(self, after: int = -1, timeout: float | None = None) -> Frame | None:
        """The newest frame with an index above `after`; None when the stream ended (or on timeout)."""
        with self._cond:

            def ready() -> bool:
                newer = self._latest is not None and self._latest.index > after
                return self._ended or self._stop.is_set() or newer

            self._cond.wait_for(ready, timeout)
            if self._stop.is_set():
                return None
            frame = self._latest
            if frame is None or frame.index <= after:
                return None
            return frame

    def __iter__(self) -> Iterator[Frame]:
        last = -1
        while True:
            frame = self.read(last)
            if frame is None:
                self._raise_failure()
                return
            self.stats.frames_skipped += frame.index - last - 1
            self.stats.frames_delivered += 1
            last = frame.index
            yield frame

    def close(self) -> None:
        """Stop the reader thread; it releases the device itself (also when it is still connecting or reading
        now: releasing from here could pull the device from under a read in progress)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()  # a consumer waiting for the next frame stops waiting
        self._thread.join(timeout=CLOSE_TIMEOUT_S)


def open_source(
    source: str | int | Path,
    paced: bool = False,
    backoff: Backoff = Backoff(),
    max_frames: int | None = None,
    loop: bool = False,
    decode_threads: int | None = None,
    fps: float | None = None,
) -> VideoSource:
    """Open SOURCE (a file path, camera index or /dev/videoN, RTSP/HTTP URL, or GStreamer pipeline string).

    Files are read completely unless `paced`, which replays them at their fps through the live reader; `loop`
    (files only, implies `paced`) replays a file endlessly, as a camera that never ends. `decode_threads`: FFmpeg's
    decoder threads for files and streams (None: one per core). `fps` replaces a file's stated frame rate.
    """
    spec = SourceSpec.parse(source)
    if loop and spec.kind != "file":
        raise CpgaitError(f"{spec.describe()}: only a video file can be looped")
    if spec.kind == "file":
        if paced or loop:
            target = str(spec.target)
            return LiveSource(
                target,
                lambda: _PacedFileReader(target, max_frames, loop=loop, decode_threads=decode_threads, fps=fps),
                backoff,
            )
        return FileSource(str(spec.target), max_frames=max_frames, decode_threads=decode_threads, fps=fps)
    if max_frames is not None:
        raise CpgaitError(f"{spec.describe()}: a frame limit applies to files only")
    _check_given_fps(spec, fps)  # refused, not silently dropped: the live reader below is opened without it
    return LiveSource(spec.describe(), lambda: open_reader(spec, decode_threads), backoff)
