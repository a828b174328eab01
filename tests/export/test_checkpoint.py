"""Checkpoints: round trip, contract/config validation, mismatch messages, corrupt and foreign files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpgait.errors import CpgaitError
from cpgait.export.checkpoint import Checkpoint, load_checkpoint
from cpgait.export.model import ModelConfig, SeverityModel
from cpgait.runtime.core.contract import ModelContract

CONFIG = ModelConfig(streams="fused", window=16, num_series=2, num_scalars=1, width=0.05, embed_dim=8, heads=2)
CONTRACT = ModelContract(
    layout="coco17_feet",
    window=16,
    fps=30.0,
    series_features=("knee_flexion_left", "trunk_lean"),
    scalar_features=("cadence",),
    feature_joints=("left_hip", "right_hip"),
    training_data="SYNTHETIC test data",
    synthetic=True,
)


def _checkpoint(seed: int = 0) -> Checkpoint:
    torch.manual_seed(seed)
    return Checkpoint(CONFIG, CONTRACT, SeverityModel(CONFIG).state_dict(), {"epochs_run": 3})


def test_round_trip_keeps_config_contract_weights_and_training_state(tmp_path: Path) -> None:
    original = _checkpoint()
    path = original.save(tmp_path / "m.pt")
    loaded = load_checkpoint(path, expect=CONTRACT)
    assert loaded.config == CONFIG and loaded.contract == CONTRACT and loaded.training == {"epochs_run": 3}
    assert loaded.path == path
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in original.state_dict.items())
    feed = {k: torch.randn(*s) for k, s in CONFIG.input_shapes(2).items()}
    with torch.no_grad():
        assert torch.equal(loaded.model()(**feed), original.model()(**feed))


def test_saving_refuses_to_overwrite(tmp_path: Path) -> None:
    _checkpoint().save(tmp_path / "m.pt")
    with pytest.raises(CpgaitError, match="already exists.*--overwrite"):
        _checkpoint().save(tmp_path / "m.pt")
    _checkpoint(seed=1).save(tmp_path / "m.pt", overwrite=True)


def test_expected_contract_mismatch_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = _checkpoint().save(tmp_path / "m.pt")
    with pytest.raises(CpgaitError, match="window: 124 vs 16") as err:
        load_checkpoint(path, expect=replace(CONTRACT, window=124, layout="coco17"))
    message = str(err.value)
    assert str(path) in message and "window: 124 vs 16" in message and "layout: 'coco17' vs 'coco17_feet'" in message


@pytest.mark.parametrize(
    "config,message",
    [
        (replace(CONFIG, window=32), "window: config 32 vs contract 16"),
        (replace(CONFIG, num_series=3), "number of gait series: config 3 vs contract 2"),
        (replace(CONFIG, streams="gait"), "streams: config 'gait' vs contract 'fused'"),
    ],
)
def test_config_that_contradicts_the_contract_is_refused(config: ModelConfig, message: str) -> None:
    with pytest.raises(CpgaitError, match=message):
        Checkpoint(config, CONTRACT, {}, {})


def _write(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


def _good_payload(tmp_path: Path) -> dict:
    return torch.load(_checkpoint().save(tmp_path / "good.pt"), weights_only=True)


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda d: (d / "x.pt").write_bytes(b"\x00garbage, not a zip") and d / "x.pt",
            "not a readable cpgait checkpoint",
        ),
        (lambda d: d / "missing.pt", "no such checkpoint file"),
        (lambda d: _write(d / "x.pt", {"weights": torch.zeros(2)}), "not a cpgait checkpoint"),
        (lambda d: _write(d / "x.pt", {**_good_payload(d), "format": "cpgait.checkpoint/0"}), "checkpoint format"),
        (lambda d: _write(d / "x.pt", {**_good_payload(d), "config": {**CONFIG.to_dict(), "width": -1.0}}), "width"),
        (
            lambda d: _write(d / "x.pt", {**_good_payload(d), "contract": {**CONTRACT.__dict__, "window": 1}}),
            "window is 1 frames",
        ),
        (lambda d: _write(d / "x.pt", {**_good_payload(d), "state_dict": {}}), "weights do not fit.*missing"),
        (
            lambda d: _write(d / "x.pt", {**_good_payload(d), "config": {**CONFIG.to_dict(), "width": 0.1}}),
            "wrong shape",
        ),
    ],
)
def test_corrupt_or_foreign_files_are_refused_with_the_file_named(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(CpgaitError, match=message) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = _checkpoint().save(tmp_path / "m.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CpgaitError, match="not a readable cpgait checkpoint"):
        load_checkpoint(path)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _checkpoint().save(tmp_path_factory.mktemp("ckpt") / "m.pt").read_bytes()


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_mutation_of_a_checkpoint_loads_or_is_one_clear_error(
    tmp_path_factory: pytest.TempPathFactory, good_checkpoint: bytes, data: st.DataObject
) -> None:
    raw = bytearray(good_checkpoint)
    for _ in range(data.draw(st.integers(1, 10))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("m") / "m.pt"
    path.write_bytes(bytes(raw[: data.draw(st.integers(1, len(raw)))]))
    try:
        load_checkpoint(path)
    except CpgaitError as exc:
        assert str(path) in str(exc)
