"""What a benchmark ran on: CPU, GPU and its clocks, Jetson power mode, library versions, load from other jobs.

Nothing here imports torch or tensorrt: versions come from the installed distributions' metadata, and the CUDA
version from torch only when torch is already loaded.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from cpgait import __version__

_PACKAGES = {
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime-gpu",
    "torch": "torch",
    "tensorrt": "tensorrt",
    "opencv": "opencv-python-headless",
    "cuda-python": "cuda-python",
}


def _version(dist: str) -> str | None:
    try:
        return _md.version(dist)
    except _md.PackageNotFoundError:
        return None


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    """Output of a system tool, or None when it is absent or fails (these are optional facts, never errors)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpus() -> list[dict]:
    """Each NVIDIA GPU's name, driver, memory and current / maximum SM and memory clocks (nvidia-smi, when present)."""
    fields = "name,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.limit"
    out = _run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"])
    if not out:
        return []
    keys = [
        "name",
        "driver",
        "memory_mib",
        "sm_clock_mhz",
        "mem_clock_mhz",
        "max_sm_clock_mhz",
        "max_mem_clock_mhz",
        "power_limit_w",
    ]
    return [dict(zip(keys, (v.strip() for v in line.split(",")))) for line in out.splitlines()]


def jetson() -> dict | None:
    """Power mode and clocks on a Jetson (nvpmodel -q, jetson_clocks --show, one tegrastats sample), else None."""
    if not Path("/etc/nv_tegra_release").is_file() and shutil.which("nvpmodel") is None:
        return None
    release = Path("/etc/nv_tegra_release")
    return {
        "l4t_release": release.read_text().strip() if release.is_file() else None,
        "nvpmodel": _run(["nvpmodel", "-q"]),
        "jetson_clocks": _run(["jetson_clocks", "--show"]),
        "tegrastats": _tegrastats_sample(),
    }


def _tegrastats_sample() -> str | None:
    if shutil.which("tegrastats") is None:
        return None
    try:
        proc = subprocess.Popen(["tegrastats", "--interval", "200"], stdout=subprocess.PIPE, text=True)
    except OSError:
        return None
    try:
        assert proc.stdout is not None  # stdout=PIPE
        return proc.stdout.readline().strip() or None
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def cuda_version() -> str | None:
    """The CUDA version of the loaded torch, else the driver's CUDA version from nvidia-smi."""
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch.version, "cuda", None):
        return str(torch.version.cuda)
    out = _run(["nvidia-smi"])
    if out and "CUDA Version:" in out:
        return out.split("CUDA Version:")[1].split()[0]
    return None


def describe(argv: list[str] | None = None) -> dict:
    """The environment record of the JSON report (schema: `environment`)."""
    import onnxruntime as ort

    versions = {key: _version(dist) for key, dist in _PACKAGES.items()}
    versions["cpgait"] = __version__
    versions["python"] = platform.python_version()
    versions["cuda"] = cuda_version()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["cpgait-bench", *(sys.argv[1:] if argv is None else argv)]),
        "os": platform.platform(),
        "cpu": {
            "model": cpu_model(),
            "arch": platform.machine(),
            "logical_cores": psutil.cpu_count(logical=True),
            "physical_cores": psutil.cpu_count(logical=False),
        },
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": gpus(),
        "jetson": jetson(),
        "versions": versions,
        "onnxruntime_providers": list(ort.get_available_providers()),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


@dataclass(frozen=True)
class CpuUsage:
    """CPU use over a stretch of work: the whole machine's and this process's, in % of all cores."""

    system_percent: float
    process_percent: float
    others_percent: float  # what other processes used meanwhile: a noisy-neighbour figure

    def __post_init__(self) -> None:
        for name in ("system_percent", "process_percent", "others_percent"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} is {getattr(self, name)}; expected >= 0")


class CpuMeter:
    """Context manager: `with CpuMeter() as m: work()`, then `m.result` is a `CpuUsage` for that stretch."""

    def __enter__(self) -> CpuMeter:
        self._proc = psutil.Process()
        self._cores = psutil.cpu_count(logical=True) or 1
        self._sys0 = psutil.cpu_times()
        self._proc0 = self._proc.cpu_times()
        self._wall0 = time.monotonic()
        self.result: CpuUsage | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.monotonic() - self._wall0, 1e-9)
        sys1, proc1 = psutil.cpu_times(), self._proc.cpu_times()
        busy = _busy(sys1) - _busy(self._sys0)
        total = _total(sys1) - _total(self._sys0)
        system = 100.0 * busy / total if total > 0 else 0.0
        own = (proc1.user + proc1.system) - (self._proc0.user + self._proc0.system)
        process = min(100.0, 100.0 * own / (wall * self._cores))
        self.result = CpuUsage(round(system, 1), round(process, 1), round(max(0.0, system - process), 1))


def _total(times: psutil._common.scputimes) -> float:
    # Linux counts guest time inside user time as well: leave it out so nothing is counted twice
    return sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _busy(times: psutil._common.scputimes) -> float:
    return _total(times) - times.idle - getattr(times, "iowait", 0.0)
