"""The model contract: validation, JSON round trip, mismatch messages."""

from __future__ import annotations

import dataclasses

import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import ModelContract


def _contract(**overrides) -> ModelContract:
    base = dict(
        layout="coco17_feet",
        window=124,
        fps=30.0,
        series_features=("knee_flexion_left",),
        scalar_features=("cadence",),
        feature_joints=("left_knee",),
    )
    base.update(overrides)
    return ModelContract(**base)


def test_json_round_trip() -> None:
    c = _contract(training_data="SYNTHETIC: cpgait synth --n 4")
    assert ModelContract.from_json(c.to_json()) == c


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(layout="nope"), "unknown skeleton layout 'nope'"),
        (dict(window=1), "window is 1 frames"),
        (dict(fps=0.0), "fps is 0.0"),
        (dict(streams="both"), "streams is 'both'"),
        (dict(series_features=(), scalar_features=()), "needs gait features"),
        (dict(class_names=("only",)), "1 class(es)"),
        (dict(format="cpgait.contract/9"), "cpgait.contract/9"),
    ],
)
def test_invalid_contracts_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(CpgaitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _contract(**overrides)


def test_skeleton_only_needs_no_features_and_has_one_input() -> None:
    c = _contract(streams="skeleton", series_features=(), scalar_features=())
    assert c.input_names == ("skeleton",)
    assert _contract().input_names == ("skeleton", "gait_series", "gait_scalars")
    assert _contract(streams="gait").input_names == ("gait_series", "gait_scalars")


def test_mismatch_names_both_values() -> None:
    with pytest.raises(CpgaitError, match=r"model.onnx: .*window: 124 vs 64"):
        _contract().require_same(_contract(window=64), "model.onnx")
    _contract().require_same(_contract(training_data="other"), "same model, other note")


def test_source_layout_must_match() -> None:
    with pytest.raises(CpgaitError, match="'coco17' but the model was trained on 'coco17_feet'.*heel and toe"):
        _contract().require_source("coco17", "pose model movenet")
    _contract().require_source("coco17_feet", "pose model blazepose")


@pytest.mark.parametrize(
    "text,message",
    [("{", "malformed JSON"), ("[]", "expected a JSON object"), ('{"bogus": 1}', "unknown contract field")],
)
def test_bad_contract_json(text: str, message: str) -> None:
    with pytest.raises(CpgaitError, match=message):
        ModelContract.from_json(text, "x.onnx")


def test_contract_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'window'"):
        _contract().window = 3  # type: ignore[misc]
