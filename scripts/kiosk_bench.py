"""Does the web layer starve the live loop? Throughput of `cpgait run` alone vs the same loop inside `cpgait kiosk`
with a client watching the live page (MJPEG stream + the state polled twice a second), on the demo clip, alternated
`--repeats` times in one run; and the live stream's frame rate as the client received it.

    python scripts/kiosk_bench.py --repeats 3 --out bench/results/kiosk-cpu

writes kiosk-cpu.json and kiosk-cpu.md. Both sides read the clip as fast as it decodes (`--unpaced` in the kiosk),
so frames/s is the loop's throughput; the stream is capped at the kiosk's STREAM_MAX_FPS. Last, the stream's capacity
with the web layer alone: the clip's pictures published at 30 fps into a session's live view, read over HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kiosk"))

from kiosk_server import KioskProcess, free_port  # noqa: E402

CLIP = ROOT / ".cache" / "demo.mp4"
MODEL = ROOT / "runtime" / "assets" / "reference.onnx"


def run_alone(clip: Path) -> float:
    """frames/s of `cpgait run` on the clip (headless, no outputs), from its printed summary."""
    out = subprocess.run(
        [sys.executable, "-m", "cpgait.cli", "run", str(clip), "--model", str(MODEL), "--headless"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"= ([\d.]+) frames/s", out).group(1))


class StreamWatcher(threading.Thread):
    """Reads the MJPEG stream like a browser <img> does, counting pictures and when they came."""

    def __init__(self, url: str, cookie: str) -> None:
        super().__init__(daemon=True)
        self.request = urllib.request.Request(url, headers={"cookie": cookie})
        self.times: list[float] = []

    def run(self) -> None:
        with urllib.request.urlopen(self.request, timeout=60) as r:
            for line in r:
                if line.startswith(b"Content-Type: image/jpeg"):
                    self.times.append(time.perf_counter())

    def fps(self) -> float:
        t = self.times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 else 0.0


def run_kiosk(clip: Path) -> tuple[float, float, int]:
    """frames/s of the kiosk session's loop (its run summary) and of the stream the client received."""
    with tempfile.TemporaryDirectory() as tmp:
        kiosk = KioskProcess(Path(tmp), clip)
        try:
            kiosk.wait_ready()
            sid = kiosk.start_session("P-BENCH", str(clip))
            watcher = StreamWatcher(f"{kiosk.url}/sessions/{sid}/stream.mjpg", kiosk.cookie)
            watcher.start()
            while not json.loads(kiosk.get(f"/sessions/{sid}/status.json")).get("ended"):
                time.sleep(0.5)  # as the live page polls
            watcher.join(timeout=30)
            db = sqlite3.connect(Path(tmp) / "kiosk.sqlite3")
            summary = json.loads(db.execute("SELECT summary_json FROM sessions WHERE id=?", (sid,)).fetchone()[0])
            db.close()
        finally:
            kiosk.stop()
    return float(summary["fps"]), watcher.fps(), len(watcher.times)


def stream_capacity(clip: Path, seconds: float) -> tuple[float, int]:
    """pictures/s the kiosk's MJPEG stream delivers to a client when pictures come at the clip's 30 fps: the web
    layer alone (a session's LiveView fed with the clip's frames by a thread; no pose model competing)."""
    import types

    import cv2
    import uvicorn

    from cpgait.kiosk.access import Access
    from cpgait.kiosk.app import KioskConfig, create_app
    from cpgait.kiosk.deployment import Deployment, reference_model
    from cpgait.kiosk.sessions import LiveView
    from cpgait.kiosk.store import NewSession, Store
    from cpgait.runtime.live.capture import Frame
    from cpgait.runtime.live.pipeline import FrameReport
    from cpgait.runtime.live.subject import SEARCHING, SubjectFrame

    capture = cv2.VideoCapture(str(clip))
    images = [capture.read()[1] for _ in range(60)]
    capture.release()
    with tempfile.TemporaryDirectory() as tmp:
        d = Deployment.load(reference_model(), "blazepose", "ort-cpu", None)
        store = Store(Path(tmp) / "kiosk.sqlite3")
        store.add_patient("P-BENCH")
        sid = store.start_session(
            NewSession(
                "P-BENCH", "", "0", str(d.model), d.model_sha256, d.contract.to_json(), "bench", "blazepose", "x"
            )
        )
        app = create_app(KioskConfig(Path(tmp), ("0",), d), store, Access(None), prepare=False)
        view = LiveView(target_windows=3)
        app.state.kiosk.runners[sid] = types.SimpleNamespace(view=view, running=True)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        stop = threading.Event()

        def feed() -> None:
            i = 0
            while not stop.is_set():
                image = images[i % len(images)].copy()
                frame = Frame(i, i / 30, image, time.perf_counter_ns())
                sf = SubjectFrame(frame, SEARCHING, None, None, "coco17", np.zeros((0, 4)))
                view.publish(FrameReport(sf, None, None), image, 0)
                i += 1
                time.sleep(1 / 30)

        threading.Thread(target=feed, daemon=True).start()
        watcher = StreamWatcher(f"http://127.0.0.1:{port}/sessions/{sid}/stream.mjpg", "")
        watcher.start()
        time.sleep(seconds)
        stop.set()
        view.end("finished")
        watcher.join(timeout=10)
        server.should_exit = True
        store.close()
    return watcher.fps(), len(watcher.times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kiosk-cpu")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    alone, kiosk, stream, pictures = [], [], [], []
    for i in range(args.repeats):
        alone.append(run_alone(CLIP))
        k, s, n = run_kiosk(CLIP)
        kiosk.append(k)
        stream.append(s)
        pictures.append(n)
        print(f"repeat {i + 1}: run alone {alone[-1]:.1f} frames/s, kiosk {k:.1f} frames/s, stream {s:.1f} fps")
    capacity, capacity_pictures = stream_capacity(CLIP, 10.0)
    print(f"stream capacity: {capacity:.1f} pictures/s")
    ratio = statistics.median(kiosk) / statistics.median(alone)
    result = {
        "command": "python scripts/kiosk_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, no GPU",
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "clip": str(CLIP.relative_to(ROOT)),
        "run_alone_fps": [round(v, 2) for v in alone],
        "kiosk_loop_fps": [round(v, 2) for v in kiosk],
        "kiosk_stream_fps": [round(v, 2) for v in stream],
        "kiosk_stream_pictures": pictures,
        "stream_capacity_fps": round(capacity, 2),
        "stream_capacity_pictures": capacity_pictures,
        "median_ratio_kiosk_to_alone": round(ratio, 3),
        "ratio_per_repeat": [round(k / a, 3) for k, a in zip(kiosk, alone)],
        "target_ratio": 0.85,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = [
        f"`{result['command']}`",
        "",
        f"Machine: {result['machine']}; load average {result['load_average_before']} before, "
        f"{result['load_average_after']} after (other processes share these cores). {result['date']}.",
        "",
        "| repeat | `cpgait run` alone, frames/s | kiosk session loop, frames/s | kiosk / alone | stream received, fps |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {i + 1} | {a:.1f} | {k:.1f} | {k / a:.0%} | {s:.1f} |"
            for i, (a, k, s) in enumerate(zip(alone, kiosk, stream))
        ),
        "",
        f"Median kiosk / alone: {ratio:.0%} (target >= 85 %). Median stream during the sessions: "
        f"{statistics.median(stream):.1f} fps (it cannot exceed the loop's rate; the kiosk caps it at 20).",
        "",
        f"Stream capacity (the web layer alone: pictures of the clip published at 30 fps, read by an MJPEG client "
        f"for 10 s): {capacity:.1f} pictures/s ({capacity_pictures} pictures).",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
