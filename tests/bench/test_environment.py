"""What a report says about the machine: GPU and Jetson facts parsed from their tools, CPU use, peak memory."""

from __future__ import annotations

import numpy as np
import pytest

from cpgait.bench import environment
from cpgait.bench.memory import PeakMemory

SMI = "NVIDIA H100 80GB HBM3, 570.86.15, 81559, 1980, 2619, 1980, 2619, 700.00"


def test_gpu_name_and_clocks_come_from_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_run", lambda cmd, timeout=5.0: SMI if cmd[0] == "nvidia-smi" else None)
    (gpu,) = environment.gpus()
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["sm_clock_mhz"] == "1980"
    assert gpu["max_mem_clock_mhz"] == "2619" and gpu["power_limit_w"] == "700.00"


def test_no_nvidia_smi_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_run", lambda cmd, timeout=5.0: None)
    assert environment.gpus() == []


def test_jetson_power_mode_and_clocks_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    tools = {"nvpmodel": "NV Power Mode: MAXN\n0", "jetson_clocks": "SOC family:tegra234  Machine:Orin"}
    monkeypatch.setattr(environment.shutil, "which", lambda name: f"/usr/bin/{name}" if name in tools else None)
    monkeypatch.setattr(environment, "_run", lambda cmd, timeout=5.0: tools.get(cmd[0]))
    info = environment.jetson()
    assert info["nvpmodel"].startswith("NV Power Mode: MAXN") and "tegra234" in info["jetson_clocks"]
    assert info["tegrastats"] is None  # not installed here: said, not invented


def test_not_a_jetson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    monkeypatch.setattr(environment.Path, "is_file", lambda self: False)
    assert environment.jetson() is None


def test_cpu_meter_reports_shares_of_the_machine() -> None:
    with environment.CpuMeter() as meter:
        sum(i * i for i in range(200_000))
    usage = meter.result
    assert 0 <= usage.process_percent <= 100 and 0 <= usage.system_percent <= 100
    assert usage.others_percent == pytest.approx(max(0.0, usage.system_percent - usage.process_percent), abs=0.11)


def test_peak_memory_sees_a_short_lived_allocation() -> None:
    with PeakMemory() as before:
        pass
    with PeakMemory() as meter:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched, then freed inside the window
        del block
    assert meter.result.growth_mb < 50  # freed again
    if meter.result.scope != "window":
        pytest.skip("this platform cannot reset the peak RSS at the start of a window")
    assert meter.result.peak_mb >= before.result.peak_mb + 150
