"""The layering rule, enforced: every module's imports point one way, and the kiosk side never loads torch or
tensorrt when it is imported.

Layers, lowest first (a module may import its own layer and any lower one, lazily or not, and may not name a
higher layer's module in a string either): cpgait's root (version, errors) < runtime.core < runtime.gait <
runtime.data < runtime.backends < runtime.pose < runtime.live < runtime.app < calibration < export < training <
bench and the applications in cpgait/ (CLI, demo, kiosk, batch).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cpgait

LAYERS = (
    ("cpgait", "cpgait.errors"),
    ("cpgait.runtime", "cpgait.runtime.core"),
    ("cpgait.runtime.gait",),
    ("cpgait.runtime.data",),
    ("cpgait.runtime.backends",),
    ("cpgait.runtime.pose",),
    ("cpgait.runtime.live",),
    ("cpgait.runtime.app",),
    ("cpgait.calibration",),
    ("cpgait.export",),
    ("cpgait.training",),
)
TOP = len(LAYERS)  # cpgait-bench and everything else under cpgait/: may import anything
KIOSK_SIDE = ("cpgait.runtime", "cpgait.calibration")  # no torch / tensorrt at module level here
HEAVY = ("torch", "tensorrt")


def layer_of(module: str) -> int:
    """The layer a cpgait module belongs to: the longest matching prefix; the root package alone is layer 0."""
    if module in ("cpgait", "cpgait.errors"):
        return 0
    best, rank = "", TOP
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix == "cpgait":
                continue
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, index
    return rank


def _module_name(path: Path, roots: dict[str, Path]) -> str:
    for package, root in roots.items():
        if path.is_relative_to(root):
            parts = path.relative_to(root).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            return ".".join((package, *parts))
    raise ValueError(path)


def package_roots() -> dict[str, Path]:
    """Package name -> folder, as pyproject's package-dir maps them (runtime/ is cpgait.runtime, ...)."""
    repo = Path(cpgait.__file__).resolve().parent.parent
    roots = {f"cpgait.{name}": repo / name for name in ("runtime", "calibration", "export", "training", "bench")}
    return {**roots, "cpgait": repo / "cpgait"}


def imports_of(source: str) -> list[tuple[str, bool, int]]:
    """(imported module, at module level, line) for every import and every string naming a cpgait module."""
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = False  # annotations only: never executed
            if isinstance(child, ast.Import):
                found.extend((alias.name, top, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                found.append((child.module, top, child.lineno))
                if child.module.startswith("cpgait"):  # `from cpgait.x import submodule` names the submodule
                    found.extend((f"{child.module}.{a.name}", top, child.lineno) for a in child.names)
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                text = child.value.split(":")[0]
                if text.startswith("cpgait.") and text.replace(".", "").replace("_", "").isalnum():
                    found.append((text, False, child.lineno))
            visit(child, inner)

    visit(ast.parse(source), True)
    return found


def violations(module: str, source: str, known: set[str]) -> list[str]:
    """Wrong-way imports (or module names in strings) and module-level heavy imports of one module's source."""
    own = layer_of(module)
    problems = []
    for name, top, line in imports_of(source):
        head = name.split(".")[0]
        if head in HEAVY and top and module.startswith(KIOSK_SIDE):
            problems.append(f"{module}:{line} imports {name} at module level (only inside functions here)")
        if head == "cpgait" and name in known and layer_of(name) > own:
            problems.append(f"{module}:{line} imports {name}, a higher layer than its own")
    return problems


def all_modules() -> dict[str, Path]:
    roots = package_roots()
    modules = {}
    for root in roots.values():
        for path in root.rglob("*.py"):
            if "assets" not in path.parts:
                modules[_module_name(path, roots)] = path
    return modules


def test_every_import_points_down_the_layers() -> None:
    modules = all_modules()
    known = set(modules)
    problems = [p for name, path in sorted(modules.items()) for p in violations(name, path.read_text(), known)]
    assert not problems, "\n".join(problems)


def test_the_layers_cover_the_package() -> None:
    modules = all_modules()
    assert len(modules) > 60
    assert layer_of("cpgait.runtime.core.contract") < layer_of("cpgait.runtime.live.pipeline") < TOP
    assert layer_of("cpgait.cli") == TOP and layer_of("cpgait.bench.cli") == TOP


KNOWN = {
    "cpgait.runtime.live.pipeline",
    "cpgait.runtime.core.layouts",
    "cpgait.export.torch_runner",
    "cpgait.runtime.gait.features",
}


@pytest.mark.parametrize(
    "module,source,expected",
    [
        ("cpgait.runtime.core.layouts", "from cpgait.runtime.live.pipeline import Pipeline\n", "a higher layer"),
        (
            "cpgait.runtime.core.layouts",
            "def f():\n    from cpgait.runtime.live.pipeline import Pipeline\n",
            "a higher layer",
        ),
        ("cpgait.runtime.backends.registry", "X = 'cpgait.export.torch_runner:TorchRunner'\n", "a higher layer"),
        ("cpgait.runtime.gait.features", "import torch\n", "imports torch at module level"),
        ("cpgait.calibration.gate", "from tensorrt import Builder\n", "imports tensorrt at module level"),
        ("cpgait.runtime.gait.features", "def f():\n    import torch\n", None),
        (
            "cpgait.runtime.gait.features",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
            None,
        ),
        ("cpgait.runtime.live.pipeline", "from cpgait.runtime.core.layouts import get_layout\n", None),
        ("cpgait.export.onnx_export", "import torch\n", None),
        ("cpgait.runtime.core.contract", "KEY = 'cpgait.contract'\n", None),
    ],
    ids=[
        "up at module level",
        "up inside a function",
        "up by name in a string",
        "torch in runtime",
        "tensorrt in calibration",
        "lazy torch",
        "type-only torch",
        "down",
        "torch on the workstation",
        "a metadata key, not a module",
    ],
)
def test_the_checker_catches_wrong_way_imports(module: str, source: str, expected: str | None) -> None:
    found = violations(module, source, KNOWN)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0]
