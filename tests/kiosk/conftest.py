"""Kiosk fixtures: a store in a temporary folder and the deployment of the shipped reference model."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the kiosk tests need the `kiosk` extra")

from cpgait.kiosk.deployment import Deployment, reference_model  # noqa: E402
from cpgait.kiosk.store import Store  # noqa: E402


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    return Deployment.load(reference_model(), "blazepose", "ort-cpu", None)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "data" / "kiosk.sqlite3")
    yield s
    s.close()
