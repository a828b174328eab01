"""`cpgait kiosk` on the command line: refusals, backup, PIN; and the runtime without the kiosk's dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kiosk_fixtures import add_finished_session
from typer.testing import CliRunner

from cpgait.cli import app
from cpgait.kiosk.access import PIN_SETTING, pin_matches
from cpgait.kiosk.store import DB_NAME, Store

runner = CliRunner()


def test_serving_on_the_network_without_a_pin_is_refused(tmp_path: Path) -> None:
    r = runner.invoke(app, ["kiosk", "--data-dir", str(tmp_path), "--camera", "0", "--host", "0.0.0.0"])
    assert r.exit_code != 0 and "needs a PIN" in str(r.exception)


def test_set_pin_and_backup(tmp_path: Path, deployment) -> None:
    r = runner.invoke(app, ["kiosk", "set-pin", "--data-dir", str(tmp_path), "--pin", "246810"])
    assert r.exit_code == 0, r.output
    store = Store(tmp_path / DB_NAME)
    assert pin_matches(store.setting(PIN_SETTING), "246810")
    sid = add_finished_session(store, deployment)
    out = tmp_path / "backup.sqlite3"
    r = runner.invoke(app, ["kiosk", "backup", str(out), "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and out.is_file()
    assert Store(out).session(sid) is not None
    r = runner.invoke(app, ["kiosk", "backup", str(out), "--data-dir", str(tmp_path)])
    assert r.exit_code != 0 and "already exists" in str(r.exception)
    r = runner.invoke(app, ["kiosk", "backup", str(out), "--data-dir", str(tmp_path / "none")])
    assert r.exit_code != 0 and "no kiosk database" in str(r.exception)


BLOCK_KIOSK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        blocked = ("starlette", "uvicorn", "jinja2", "fpdf", "python_multipart", "platformdirs", "matplotlib")
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is blocked in this test", name=name)
        return None
sys.meta_path.insert(0, _Block())
"""


def test_runtime_and_help_work_without_the_kiosk_extra(tmp_path: Path) -> None:
    code = "import cpgait.runtime.app.run, cpgait.runtime.live.pipeline, cpgait.doctor; import starlette"
    r = subprocess.run([sys.executable, "-c", BLOCK_KIOSK + code], capture_output=True, text=True, timeout=120)
    assert (
        r.returncode != 0 and "starlette is blocked" in r.stderr
    )  # the blocker works, and only the last import hit it
    run = BLOCK_KIOSK + "sys.argv = ['cpgait'] + sys.argv[1:]\nfrom cpgait.cli import main\nmain()"
    r = subprocess.run([sys.executable, "-c", run, "kiosk", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "backup" in r.stdout
    args = ["kiosk", "--camera", "0", "--data-dir", str(tmp_path)]
    r = subprocess.run([sys.executable, "-c", run, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "error: the kiosk needs the `kiosk` extra" in r.stderr


def test_doctor_reports_each_check_and_fails_on_a_missing_camera(tmp_path: Path) -> None:
    clip = tmp_path / "walk.mp4"
    clip.write_bytes(b"")
    ok = runner.invoke(app, ["doctor", "--camera", str(clip), "--data-dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    names = ("video devices", f"camera {clip}: video file", "ONNX Runtime", "backend ort-cpu", "free disk", "clock")
    for name in names:
        assert name in ok.output, name
    missing = runner.invoke(app, ["doctor", "--camera", str(tmp_path / "gone.mp4"), "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "fail  camera" in missing.output and "no such file" in missing.output
