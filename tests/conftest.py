"""Shared fixtures: a tiny exported model and a small synthetic data set (seconds)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

WINDOW = 32
WALK_CLIP = Path(__file__).resolve().parent / "data" / "walk.mp4"  # the demo clip's first 200 frames (see NOTICE)
STARTS = (100, 140)  # the walker crosses the demo clip from about frame 60 to 220
CLIP_FRAMES = 60


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


def _write(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two walks cut from the committed demo-clip excerpt at different starts (smaller: same stages, less
    decoding), a clip nobody walks in and a file that is no video."""
    folder = tmp_path_factory.mktemp("clips")
    capture = cv2.VideoCapture(str(WALK_CLIP))
    frames = []
    while len(frames) < max(STARTS) + CLIP_FRAMES:
        ok, image = capture.read()
        assert ok
        frames.append(cv2.resize(image, (884, 496)))
    capture.release()
    for start in STARTS:
        _write(folder / f"walk{start}.mp4", frames[start : start + CLIP_FRAMES])
    _write(folder / "empty.mp4", [np.full_like(frames[0], 90)] * 15)
    (folder / "broken.mp4").write_bytes(b"not a video")
    return folder
