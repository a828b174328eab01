"""Does the web layer starve the live loop? Throughput of `cpgait run` alone vs the same loop inside `cpgait kiosk`
with a client watching the live page (MJPEG stream + the state polled twice a second), on the demo clip, alternated
`--repeats` times in one run; and the live stream's frame rate as the client received it.

    python scripts/kiosk_bench.py --repeats 3 --out bench/results/kiosk-cpu

writes kiosk-cpu.json and kiosk-cpu.md. Both sides read the clip as fast as it decodes (`--unpaced` in the kiosk),
so frames/s is the loop's throughput; the stream is capped at the kiosk's STREAM_MAX_FPS.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kiosk"))

from kiosk_server import KioskProcess  # noqa: E402

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
        "median_ratio_kiosk_to_alone": round(ratio, 3),
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
        "| repeat | `cpgait run` alone, frames/s | kiosk session loop, frames/s | live stream received, fps |",
        "|---:|---:|---:|---:|",
        *(f"| {i + 1} | {a:.1f} | {k:.1f} | {s:.1f} |" for i, (a, k, s) in enumerate(zip(alone, kiosk, stream))),
        "",
        f"Median kiosk / alone: {ratio:.0%} (target >= 85 %). Median stream: {statistics.median(stream):.1f} fps "
        "(capped at 20 by the kiosk; it cannot exceed the loop's rate).",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
