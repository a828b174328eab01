"""A Triton server on this machine from the `nvidia-pytriton` wheel's `tritonserver` binary (x86-64 Linux).

That build has the Python backend only (no ONNX Runtime backend), so it serves repositories written with
`--triton-backend python`. A production server is NVIDIA's Triton container (`tritonserver --model-repository
REPO`), which serves the default ONNX Runtime repositories as well. The Python backend runs its stub with the
`python3` first on PATH, so this process's interpreter (with onnxruntime and numpy) is put there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpgait.errors import CpgaitError

START_TIMEOUT_S = 60.0


def pytriton_server() -> tuple[Path, Path] | str:
    """(the pytriton package folder, its shared-library folder), or why the server cannot run here."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        return "nvidia-pytriton is not installed (pip install --no-deps nvidia-pytriton: it ships tritonserver)"
    package = Path(spec.origin).parent
    binary = package / "tritonserver" / "bin" / "tritonserver"
    stub = package / "tritonserver" / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not binary.is_file() or not (stub / "triton_python_backend_stub").is_file():
        return f"{package} has no tritonserver binary or no Python {stub.name} backend stub"
    return package, package.parent / "nvidia_pytriton.libs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalTritonServer:
    """`with LocalTritonServer(repo) as server:` a running server; `server.grpc_url` / `server.http_url`."""

    def __init__(self, repo: str | Path) -> None:
        found = pytriton_server()
        if isinstance(found, str):
            raise CpgaitError(found)
        self.package, self.libs = found
        self.repo = Path(repo)
        self.ports = {"http": _free_port(), "grpc": _free_port(), "metrics": _free_port()}
        self.grpc_url = f"127.0.0.1:{self.ports['grpc']}"
        self.http_url = f"http://127.0.0.1:{self.ports['http']}"
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None

    def __enter__(self) -> LocalTritonServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="cpgait-triton-")
        backends = Path(self._tmp.name) / "backends"
        shutil.copytree(self.package / "tritonserver" / "backends", backends)
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        stub = self.package / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub"
        shutil.copy2(stub, backends / "python")
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["LD_LIBRARY_PATH"] = f"{self.libs}{os.pathsep}{env.get('LD_LIBRARY_PATH', '')}"
        self.log = Path(self._tmp.name) / "tritonserver.log"
        command = [
            str(self.package / "tritonserver" / "bin" / "tritonserver"),
            f"--model-repository={self.repo}",
            f"--backend-directory={backends}",
            f"--http-port={self.ports['http']}",
            f"--grpc-port={self.ports['grpc']}",
            f"--metrics-port={self.ports['metrics']}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            "--disable-auto-complete-config",
        ]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        import tritonclient.http as http

        process = self.process
        if process is None:
            raise RuntimeError("the server was not started")

        client = http.InferenceServerClient(self.http_url.split("://", 1)[1])
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CpgaitError(f"tritonserver exited with {process.returncode}: {self.tail()}")
            try:
                if client.is_server_ready():
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(0.5)
        raise CpgaitError(f"tritonserver not ready after {START_TIMEOUT_S:.0f} s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        """The end of the server's log (for error messages)."""
        if self.log is None or not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
