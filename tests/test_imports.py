"""The kiosk has neither torch nor tensorrt: the runtime and every `--help` must work without them."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import cpgait

BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "tensorrt"):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, _Block())
"""


def _run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120)


RUNTIME_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(__import__("cpgait.runtime").runtime.__path__, "cpgait.runtime.")
)
CALIBRATION_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(__import__("cpgait.calibration").calibration.__path__, "cpgait.calibration.")
)


@pytest.mark.parametrize("module", ["cpgait.runtime", *RUNTIME_MODULES, *CALIBRATION_MODULES])
def test_module_imports_without_torch_or_tensorrt(module: str) -> None:
    result = _run_blocked(f"import {module}")
    assert result.returncode == 0, result.stderr


def test_blocker_really_blocks_torch() -> None:
    result = _run_blocked("import torch")
    assert result.returncode != 0 and "blocked" in result.stderr


def _commands(app_path: str) -> list[str]:
    module, attr = app_path.split(":")
    app = getattr(__import__(module, fromlist=[attr]), attr)

    def names(typer_app) -> list[str]:
        return [c.name or c.callback.__name__.replace("_", "-") for c in typer_app.registered_commands]

    groups = [f"{g.name} {c}" for g in app.registered_groups for c in names(g.typer_instance)]
    return sorted(names(app) + groups)  # a sub-command of a group as "group command"


@pytest.mark.parametrize(
    "entry,command",
    [("cpgait.cli", None)]
    + [("cpgait.cli", c) for c in _commands("cpgait.cli:app")]
    + [("cpgait.bench.cli", None)]
    + [("cpgait.bench.cli", c) for c in _commands("cpgait.bench.cli:app")],
)
def test_every_help_runs_without_torch_or_tensorrt(entry: str, command: str | None) -> None:
    args = [*command.split(), "--help"] if command else ["--help"]
    result = _run_blocked(f"import sys; sys.argv = ['x', *{args!r}]; from {entry} import main; main()")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_version_is_exposed() -> None:
    assert cpgait.__version__


def test_the_kiosk_loop_runs_without_torch_or_tensorrt(tmp_path) -> None:
    """Not only imports: `cpgait run` on the real clip with the shipped model, torch and tensorrt blocked."""
    from pathlib import Path

    root = Path(cpgait.__file__).resolve().parent.parent
    clip, model = root / "tests" / "data" / "walk.mp4", root / "runtime" / "assets" / "reference.onnx"
    events = tmp_path / "events.jsonl"
    result = _run_blocked(
        "import sys; from cpgait.cli import main; "
        f"sys.argv = ['cpgait', 'run', {str(clip)!r}, '--model', {str(model)!r}, '--headless', "
        f"'--max-frames', '40', '--events', {str(events)!r}]; main()"
    )
    assert result.returncode == 0, result.stderr
    assert "torch" not in result.stderr and events.read_text().splitlines()[-1].startswith('{"type":"summary"')


def test_every_bench_verb_is_registered() -> None:
    """A command function that loses its decorator in a merge still imports; `cpgait-bench` must still offer it."""
    assert set(_commands("cpgait.bench.cli:app")) >= {"model", "pipeline", "features", "pose", "soak", "batch"}
