"""Grad-CAM singles out joints: a model trained where one joint alone carries the class ranks that joint first;
motion and bone input channels; the ranking's checkpoint hash drives the study's initialisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cpgait.errors import CpgaitError  # noqa: E402
from cpgait.export.checkpoint import Checkpoint  # noqa: E402
from cpgait.export.model import ModelConfig, SeverityModel, bone_matrix  # noqa: E402
from cpgait.export.onnx_export import export_checkpoint  # noqa: E402
from cpgait.runtime.core.contract import ModelContract  # noqa: E402
from cpgait.runtime.core.layouts import COCO17  # noqa: E402
from cpgait.training.gradcam import gradcam  # noqa: E402
from cpgait.training.train import baseline_of, file_sha256, fit_epoch, init_skeleton_stream  # noqa: E402

T = 16
CARRIER = COCO17.index("left_wrist")


def _one_joint_data(n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Noise skeletons; the class (0/1) is only in how far the carrier joint swings (amplitude 0.1 vs 1.0)."""
    labels = rng.integers(0, 2, n)
    skel = rng.normal(0.0, 0.3, (n, 3, T, 17)).astype(np.float32)
    skel[:, 2] = 1.0
    swing = np.sin(2 * np.pi * np.arange(T) / 8 + rng.uniform(0, 2 * np.pi, (n, 1)))
    skel[:, 1, :, CARRIER] = (np.where(labels == 1, 1.0, 0.1)[:, None] * swing).astype(np.float32)
    return {"skeleton": skel}, labels.astype(np.int64)


@pytest.fixture(scope="module")
def one_joint_model() -> tuple[SeverityModel, dict[str, np.ndarray], np.ndarray]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = SeverityModel(ModelConfig(streams="skeleton", window=T, num_classes=2, width=0.125, embed_dim=8, heads=2))
    inputs, labels = _one_joint_data(256, rng)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(8):
        fit_epoch(model, optimizer, inputs, labels, rng.permutation(len(labels)), 32, torch.device("cpu"))
    return model, *_one_joint_data(128, np.random.default_rng(1))


# Blocks 1-3 single out the carrier. From block 4 on (measured on this model: the carrier ranks 4th-15th) the graph
# convolutions have spread it over its neighbours and the mean over joints pools it from anywhere, so the study's
# last-block Grad-CAM does not; this is why `cpgait explain --layer` exists.
@pytest.mark.parametrize("layer", [1, 2, 3])
def test_the_joint_that_alone_carries_the_class_ranks_first(one_joint_model, layer) -> None:
    model, inputs, labels = one_joint_model
    cams, preds = gradcam(model, inputs, labels, layer=layer)
    correct = preds == labels
    assert correct.mean() > 0.9  # the model did learn the carrier
    importance = cams[correct].mean(axis=0)
    order = np.argsort(-importance)
    assert order[0] == CARRIER, f"layer {layer}: {[COCO17.joints[i] for i in order[:3]]}"
    assert np.allclose(cams.sum(axis=1)[cams.sum(axis=1) > 0], 1.0, atol=1e-5)


def test_layer_out_of_range_is_refused(one_joint_model) -> None:
    model, inputs, labels = one_joint_model
    with pytest.raises(CpgaitError, match="--layer is 11; the ST-GCN has blocks 1..10"):
        gradcam(model, inputs, labels, layer=11)


def test_bone_channels_make_the_hips_visible_and_motion_is_the_displacement() -> None:
    stream = SeverityModel(
        ModelConfig(streams="skeleton", window=T, width=0.125, embed_dim=8, heads=2, motion=True, bones=True)
    ).skeleton
    x = torch.randn(2, 3, T, 17)
    out = stream.channels(x)
    assert out.shape == (2, 7, T, 17)
    torch.testing.assert_close(out[:, 3:5, 1:], x[:, :2, 1:] - x[:, :2, :-1])
    assert not out[:, 3:5, 0].any()
    left, right = COCO17.index("left_hip"), COCO17.index("right_hip")
    torch.testing.assert_close(out[:, 5:7, :, left], x[:, :2, :, left] - x[:, :2, :, right])  # the pelvis
    assert torch.allclose(bone_matrix().sum(dim=0), torch.ones(17))  # every joint has one reference point (mean)


def test_motion_and_bone_model_exports_with_parity(tmp_path: Path) -> None:
    config = ModelConfig(
        window=T, num_series=1, num_scalars=1, width=0.125, embed_dim=8, heads=2, motion=True, bones=True
    )
    contract = ModelContract(
        layout="coco17",
        window=T,
        fps=30.0,
        series_features=("left_ankle_speed",),
        scalar_features=("cadence",),
        feature_joints=("left_ankle", "right_ankle"),
    )
    torch.manual_seed(0)
    path = Checkpoint(config, contract, SeverityModel(config).eval().state_dict()).save(tmp_path / "m.pt")
    result = export_checkpoint(path, tmp_path / "m.onnx")
    assert result.parity.ok and result.parity.max_abs_diff <= 1e-4


def test_init_skeleton_copies_the_st_gcn_and_checks_the_ranking_hash(tmp_path: Path) -> None:
    base_config = ModelConfig(streams="skeleton", window=T, width=0.125, embed_dim=8, heads=2)
    contract = ModelContract(
        layout="coco17",
        window=T,
        fps=30.0,
        series_features=(),
        scalar_features=(),
        feature_joints=(),
        streams="skeleton",
    )
    torch.manual_seed(1)
    base = SeverityModel(base_config)
    path = Checkpoint(base_config, contract, base.state_dict()).save(tmp_path / "base.pt")
    torch.manual_seed(2)
    fused = SeverityModel(ModelConfig(window=T, num_series=1, num_scalars=1, width=0.125, embed_dim=8, heads=2))
    head_before = fused.head[0].weight.clone()
    assert init_skeleton_stream(fused, path) == file_sha256(path)
    for key, value in base.state_dict().items():
        if key.startswith("skeleton."):
            torch.testing.assert_close(fused.state_dict()[key], value)
    torch.testing.assert_close(fused.head[0].weight, head_before)  # only the ST-GCN is taken over
    wide = SeverityModel(ModelConfig(window=T, num_series=1, num_scalars=1, width=0.25, embed_dim=8, heads=2))
    with pytest.raises(CpgaitError, match="another shape.*width"):
        init_skeleton_stream(wide, path)
    provenance = {"ranking": "r.json", "model": str(path), "model_sha256": file_sha256(path)}
    assert baseline_of(provenance) == str(path)
    with pytest.raises(CpgaitError, match="is not the explained checkpoint"):
        baseline_of({**provenance, "model_sha256": "0" * 64})
    json.dumps(provenance)  # what the checkpoint stores is plain JSON
