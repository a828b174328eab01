"""Start `cpgait kiosk` as a real process on a free port and drive it over HTTP (for the crash and browser tests)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KioskProcess:
    """`cpgait kiosk --unpaced` on a video file as the camera (every frame processed: the same windows each run)."""

    def __init__(self, data_dir: Path, camera: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        args = [sys.executable, "-m", "cpgait.cli", "kiosk", "--data-dir", str(data_dir), "--camera", str(camera)]
        self.proc = subprocess.Popen(
            [*args, "--port", str(self.port), "--unpaced", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.cookie = ""

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the models are loaded (sessions can start)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the kiosk exited: {self.proc.stdout.read()}")
            try:
                if json.loads(self.get("/health"))["ready"]:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError("the kiosk did not get ready")

    def get(self, path: str) -> str:
        request = urllib.request.Request(self.url + path, headers={"cookie": self.cookie})
        with urllib.request.urlopen(request, timeout=10) as r:
            cookie = r.headers.get("set-cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
            return r.read().decode()

    def start_session(self, patient: str, camera: str) -> int:
        html = self.get("/start")
        csrf = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        body = urllib.parse.urlencode({"csrf": csrf, "new_patient": patient, "camera": camera}).encode()
        request = urllib.request.Request(self.url + "/sessions", data=body, headers={"cookie": self.cookie})
        with urllib.request.urlopen(request, timeout=30) as r:  # follows the redirect to the live page
            return int(r.url.rstrip("/").split("/")[-2])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
