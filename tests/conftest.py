"""Shared fixtures: a tiny exported model and a small synthetic data set (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

WINDOW = 32


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 SYNTHETIC sequences (3 per GMFCS level) in the coco17_feet layout."""
    from cpgait.training.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, 12, seed=3)
    return out


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised fused model (T = 32) exported with its contract; not a trained model."""
    torch = pytest.importorskip("torch")
    from cpgait.export.model import ModelConfig, SeverityModel
    from cpgait.export.onnx_export import export_model, save_model
    from cpgait.runtime.core.contract import ModelContract
    from cpgait.runtime.gait.features import SCALAR_NAMES, SERIES_NAMES

    torch.manual_seed(0)
    config = ModelConfig(
        window=WINDOW, num_series=len(SERIES_NAMES), num_scalars=len(SCALAR_NAMES), width=0.125, embed_dim=8, heads=2
    )
    contract = ModelContract(
        layout="coco17_feet",
        window=WINDOW,
        fps=30.0,
        series_features=SERIES_NAMES,
        scalar_features=SCALAR_NAMES,
        feature_joints=(),
    )
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    save_model(export_model(SeverityModel(config), contract, path), path)
    return path
