"""The Jetson/TensorRT extras pin what each JetPack's driver can run (README, "TensorRT on a Jetson").

cuda-python (cuda-bindings) 13 needs a CUDA 13 driver; JetPack 6 ships CUDA 12 drivers, so an unbounded
`cuda-python>=12` installs a package whose first call fails there. PyPI's plain `tensorrt` is a CUDA 13 build; on a
Jetson TensorRT comes from JetPack.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cpgait.runtime.backends.cuda import CUDA_PYTHON_PINS

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
requirements = pytest.importorskip("packaging.requirements")

PYPROJECT = Path(__file__).parents[3] / "pyproject.toml"


def _extras() -> dict[str, dict[str, object]]:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    return {
        name: {(r := requirements.Requirement(spec)).name: r.specifier for spec in specs}
        for name, specs in extras.items()
    }


@pytest.mark.parametrize(
    "extra,cuda_major,allowed,refused",
    [
        ("jetson6", 12, ["12.2.0", "12.6.2", "12.9.4"], ["12.0.0", "13.0.0", "13.4.4"]),
        ("jetson7", 13, ["13.0.0", "13.4.4"], ["12.9.4", "14.0.0"]),
        ("tensorrt-cu12", 12, ["12.6.2"], ["13.0.0"]),
        ("tensorrt-cu13", 13, ["13.0.0"], ["12.9.4", "14.0.0"]),
    ],
)
def test_cuda_python_is_bounded_to_the_drivers_cuda_major(
    extra: str, cuda_major: int, allowed: list[str], refused: list[str]
) -> None:
    spec = _extras()[extra]["cuda-python"]
    assert all(spec.contains(v) for v in allowed), (extra, str(spec))
    assert not any(spec.contains(v) for v in refused), (extra, str(spec))
    assert str(spec) == str(requirements.Requirement(CUDA_PYTHON_PINS[cuda_major]).specifier)  # the hint cpgait prints


def test_no_extra_pulls_pypis_tensorrt_onto_a_jetson() -> None:
    extras = _extras()
    assert not any("tensorrt" in reqs for reqs in extras.values())  # the unversioned meta package (CUDA 13)
    assert not any(name.startswith("tensorrt") for name in {*extras["jetson6"], *extras["jetson7"]})
    assert extras["tensorrt-cu12"]["tensorrt-cu12"].contains("10.3.0")
    assert not extras["tensorrt-cu13"]["tensorrt-cu13"].contains("12.0.0")


def test_jetpack6_keeps_numpy_1() -> None:
    numpy = _extras()["jetson6"]["numpy"]
    assert numpy.contains("1.26.4") and not numpy.contains("2.0.0")
