"""`cpgait doctor`: is this device ready to run the kiosk? Cameras, GPU and TensorRT, backends, engines valid for
this device, free disk and the clock. Each check says ok / warn / fail with the detail; nothing is changed."""

from __future__ import annotations

import glob
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_BYTES = 1 << 30  # below 1 GiB a session database or an engine build may not fit
EARLIEST_YEAR = 2025  # a clock before this was never set (a Jetson without RTC battery or network time)


@dataclass(frozen=True)
class Check:
    name: str
    level: str
    detail: str

    def __post_init__(self) -> None:
        if self.level not in (OK, WARN, FAIL):
            raise ValueError(f"check level {self.level!r}; expected ok, warn or fail")


def _command(args: list[str]) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cameras(sources: list[str]) -> list[Check]:
    """Video devices present, and each configured kiosk camera (device node or file) found."""
    devices = sorted(glob.glob("/dev/video*"))
    checks = [Check("video devices", OK if devices else WARN, ", ".join(devices) or "no /dev/video* device")]
    from cpgait.runtime.live.capture import SourceSpec

    for source in sources:
        spec = SourceSpec.parse(source)
        if spec.kind == "camera":
            found = Path(f"/dev/video{spec.target}").exists()
            checks.append(Check(f"camera {source}", OK if found else FAIL, "found" if found else "device missing"))
        elif spec.kind == "file":
            found = Path(str(spec.target)).is_file()
            checks.append(Check(f"camera {source}", OK if found else FAIL, "video file" if found else "no such file"))
        else:
            checks.append(Check(f"camera {source}", OK, f"{spec.kind}: opened when a session starts"))
    return checks


def gpu() -> list[Check]:
    """GPU, Jetson release, ONNX Runtime providers, TensorRT, and which backends can run here."""
    import onnxruntime as ort

    from cpgait.runtime.backends.registry import RUNTIME_BACKENDS

    checks = []
    smi = _command(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    tegra = Path("/etc/nv_tegra_release")
    if tegra.is_file():
        checks.append(Check("Jetson", OK, tegra.read_text(errors="replace").splitlines()[0][:120]))
    checks.append(Check("GPU", OK if smi else WARN, smi or "no NVIDIA GPU found (nvidia-smi)"))
    checks.append(
        Check("ONNX Runtime", OK, f"{ort.__version__}, providers: {', '.join(ort.get_available_providers())}")
    )
    for name in RUNTIME_BACKENDS.names():
        reason = RUNTIME_BACKENDS.unavailable_reason(name)
        checks.append(Check(f"backend {name}", WARN if reason else OK, reason or "available"))
    if RUNTIME_BACKENDS.unavailable_reason("trt") is None:
        import tensorrt

        checks.append(Check("TensorRT", OK, str(tensorrt.__version__)))
    return checks


def engines(folders: list[Path]) -> list[Check]:
    """Every cached engine (`*.plan` with its side-car) in `folders`, and whether it was built for this device."""
    from cpgait.errors import CpgaitError
    from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
    from cpgait.runtime.backends.trt_engine import check_engine_device, read_sidecar

    here = None
    why_not = RUNTIME_BACKENDS.unavailable_reason("trt")
    if why_not is None:
        from cpgait.runtime.backends.trt_engine import current_device

        try:
            here = current_device()
        except CpgaitError as exc:
            why_not = str(exc)
    plans = sorted(p for folder in folders for p in Path(folder).glob("*.plan"))
    if not plans:
        return [Check("engines", OK, "no cached engine in " + ", ".join(str(f) for f in folders))]
    checks = []
    for plan in plans:
        try:
            key, _ = read_sidecar(plan)
            if here is None:
                checks.append(Check(f"engine {plan.name}", WARN, f"cannot check here: {why_not}"))
            else:
                check_engine_device(plan, key, here)
                checks.append(Check(f"engine {plan.name}", OK, f"valid for {here.describe()}"))
        except CpgaitError as exc:
            checks.append(Check(f"engine {plan.name}", FAIL, str(exc)))
    return checks


def disk(folder: Path) -> Check:
    probe = Path(folder)
    while not probe.exists():
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    detail = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB at {folder}"
    return Check("free disk", OK if usage.free >= MIN_FREE_BYTES else WARN, detail)


def clock() -> Check:
    local = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    synced = _command(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    sync = {"yes": "network time synchronised", "no": "NOT synchronised with network time"}.get(
        synced or "", "network time sync unknown"
    )
    ok = time.gmtime().tm_year >= EARLIEST_YEAR
    return Check("clock", OK if ok and synced != "no" else WARN, f"{local}, {sync}" + ("" if ok else ", never set"))


def doctor(sources: list[str], engine_folders: list[Path], data_dir: Path) -> list[Check]:
    """Every check, in the order the admin page and `cpgait doctor` show them."""
    return [*cameras(sources), *gpu(), *engines(engine_folders), disk(data_dir), clock()]
