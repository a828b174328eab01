"""The accuracy gate: figures from logits, thresholds, the JSON report, and `verify` on model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from cpgait.calibration.gate import GateReport, Thresholds, compare, render, verify, write_json
from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract
from cpgait.runtime.data.windows import WindowSet, synthetic_windows

CLASSES = ("GMFCS I", "GMFCS II", "GMFCS III", "GMFCS IV")


def _windows(labels: list[int]) -> WindowSet:
    n = len(labels)
    return WindowSet({"x": np.zeros((n, 1), np.float32)}, np.asarray(labels, dtype=np.int64), "test")


def _logits(pred: list[int]) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[pred] * 5


def test_identical_models_pass_with_zero_difference() -> None:
    labels = [0, 1, 2, 3] * 5
    report = compare("a", "b", _logits(labels), _logits(labels), _windows(labels), CLASSES)
    assert report.ok and report.agreement == 1.0 and report.max_abs_diff == 0.0
    assert report.scores_a["accuracy"] == 1.0 and report.f1_drop == 0.0
    assert report.per_class_f1_delta == [0.0] * 4


def test_disagreement_and_f1_drop_fail_with_reasons() -> None:
    labels = [0, 1, 2, 3] * 25
    pred_b = list(labels)
    pred_b[:2] = [1, 0]  # two windows of 100 change class: 98 % agreement, accuracy drops
    report = compare("a", "b", _logits(labels), _logits(pred_b), _windows(labels), CLASSES)
    assert report.agreement == pytest.approx(0.98)
    assert report.f1_drop == pytest.approx(100 * (1 - report.scores_b["macro_f1"]))
    assert report.per_class_f1_delta[0] < 0 and report.per_class_f1_delta[2] == 0
    assert any("agreement 98.00% < 99.00%" in f for f in report.failures)
    assert any("macro-F1 drop" in f for f in report.failures)
    relaxed = compare(
        "a",
        "b",
        _logits(labels),
        _logits(pred_b),
        _windows(labels),
        CLASSES,
        Thresholds(min_agreement=0.95, max_f1_drop=5.0),
    )
    assert relaxed.ok


def test_unlabelled_windows_give_agreement_only() -> None:
    report = compare("a", "b", _logits([0, 1]), _logits([0, 1]), _windows([-1, -1]), CLASSES)
    assert report.scores_a is None and report.f1_drop is None and report.ok


def test_agreement_counts_every_window_labelled_or_not() -> None:
    """Agreement needs no labels: unlabelled windows that disagree fail the gate, labelled or not alike."""
    unlabelled = compare("a", "b", _logits([0, 1, 2, 3]), _logits([0, 1, 3, 2]), _windows([-1] * 4), CLASSES)
    assert unlabelled.agreement == 0.5 and not unlabelled.ok and unlabelled.origin == "test"
    assert unlabelled.failures == ["top-1 agreement 50.00% < 99.00%"]
    mixed = compare("a", "b", _logits([0, 1, 2, 3]), _logits([0, 2, 3, 0]), _windows([0, -1, -1, -1]), CLASSES)
    assert mixed.agreement == 0.25 and mixed.f1_drop == 0.0  # the one labelled window is right in both
    undefined = GateReport(**{**unlabelled.__dict__, "agreement": float("nan")})
    assert undefined.failures == ["top-1 agreement nan% < 99.00%"]  # a NaN agreement is no pass


def test_the_gate_passes_at_its_exact_thresholds() -> None:
    """Agreement equal to the minimum and an F1 drop equal to the maximum pass; a hair beyond either fails."""
    labels = [0, 1, 2, 3] * 25
    pred_b = list(labels)
    pred_b[0] = 1  # one window of 100 changes class: agreement exactly 0.99
    a, b, windows = _logits(labels), _logits(pred_b), _windows(labels)
    drop = compare("a", "b", a, b, windows, CLASSES).f1_drop
    assert drop > 0
    exact = compare("a", "b", a, b, windows, CLASSES, Thresholds(min_agreement=0.99, max_f1_drop=drop))
    assert exact.agreement == 0.99 and exact.ok, exact.failures
    stricter = Thresholds(min_agreement=np.nextafter(0.99, 1), max_f1_drop=np.nextafter(drop, 0))
    failures = compare("a", "b", a, b, windows, CLASSES, stricter).failures
    assert len(failures) == 2 and "agreement" in failures[0] and "macro-F1 drop" in failures[1]


def test_logit_differences_are_the_max_and_the_mean() -> None:
    a = np.zeros((3, 4), np.float32)
    b = a.copy()
    b[2, 1] = -3.0  # one logit of twelve moves by 3; the top-1 class stays 0 everywhere
    report = compare("a", "b", a, b, _windows([0, 0, 0]), CLASSES)
    assert report.max_abs_diff == 3.0 and report.mean_abs_diff == 0.25 and report.agreement == 1.0


@pytest.mark.parametrize(
    "kwargs,expected", [({"min_agreement": 1.5}, "--min-agreement"), ({"max_f1_drop": -1}, "--max-f1-drop")]
)
def test_thresholds_are_validated(kwargs: dict, expected: str) -> None:
    with pytest.raises(CpgaitError, match=expected):
        Thresholds(**kwargs)


def test_the_strictest_thresholds_are_allowed() -> None:
    assert Thresholds(min_agreement=1.0, max_f1_drop=0.0) == Thresholds(1.0, 0.0)


def test_logits_of_other_shapes_cannot_be_compared() -> None:
    with pytest.raises(CpgaitError, match=r"a gives logits \(2, 4\) but b gives \(2, 3\)"):
        compare("a", "b", _logits([0, 1]), np.zeros((2, 3), np.float32), _windows([0, 1]), CLASSES)


def test_json_report_round_trips_and_is_not_overwritten(tmp_path: Path) -> None:
    labels = [0, 1, 2, 3]
    report = compare("a.onnx", "b.onnx", _logits(labels), _logits(labels), _windows(labels), CLASSES)
    path = write_json(report, tmp_path / "gate.json")
    data = json.loads(path.read_text())
    assert data["format"] == "cpgait.gate/1" and data["passed"] is True and data["agreement"] == 1.0
    with pytest.raises(CpgaitError, match="already exists"):
        write_json(report, path)
    assert render(report).row_count > 5


def _synthetic(contract: ModelContract) -> WindowSet:
    return synthetic_windows(contract, 16)


def _runner_of(path: Path) -> Runner:
    from cpgait.export.backends import BACKENDS

    return BACKENDS.make_runner(path, BACKENDS.default_for(path))


def test_verify_checkpoint_against_its_onnx(tmp_path: Path, tiny_onnx: Path) -> None:
    torch = pytest.importorskip("torch")
    from cpgait.export.checkpoint import Checkpoint
    from cpgait.export.model import ModelConfig, SeverityModel

    contract = ModelContract.from_onnx(tiny_onnx)
    torch.manual_seed(1)
    config = ModelConfig(
        window=contract.window,
        num_series=len(contract.series_features),
        num_scalars=len(contract.scalar_features),
        width=0.125,
        embed_dim=8,
        heads=2,
    )
    ckpt = Checkpoint(config, contract, SeverityModel(config).state_dict()).save(tmp_path / "other.pt")
    report = verify(ckpt, tiny_onnx, _runner_of, _synthetic)  # same contract, other weights: runs, disagrees somewhere
    assert report.windows == 16 and report.max_abs_diff > 0


@pytest.mark.parametrize(
    "case,expected",
    [
        ("mismatch", "model contract does not match: window: 32 vs 40"),
        ("no-contract", "has no cpgait model contract"),
        ("suffix", "unknown model file type"),
        ("missing", "absent.onnx: no such ONNX model file"),
    ],
)
def test_verify_refuses_models_it_cannot_compare(tmp_path: Path, tiny_onnx: Path, case: str, expected: str) -> None:
    proto = onnx.load(str(tiny_onnx))
    other = tmp_path / "other.onnx"
    if case == "mismatch":
        meta = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
        meta.value = meta.value.replace('"window": 32', '"window": 40')
    if case == "no-contract":
        del proto.metadata_props[:]
    onnx.save(proto, str(other))
    if case == "suffix":
        other = other.rename(tmp_path / "other.tflite")
    if case == "missing":
        other = tmp_path / "absent.onnx"
    with pytest.raises(CpgaitError, match=expected):
        verify(tiny_onnx, other, _runner_of, _synthetic)


def test_verify_fails_a_qdq_model_that_breaks_tensorrt_rules(tmp_path: Path, tiny_onnx: Path) -> None:
    from cpgait.calibration.quantize import quantize

    qdq = quantize(tiny_onnx, synthetic_windows(ModelContract.from_onnx(tiny_onnx), 8))
    zero = next(i for i in qdq.graph.initializer if i.data_type == onnx.TensorProto.INT8 and not i.dims)
    zero.CopyFrom(numpy_helper.from_array(np.array(0, dtype=np.uint8), zero.name))  # asymmetric-style uint8
    path = tmp_path / "bad.int8.onnx"
    onnx.save(qdq, str(path))
    report = verify(tiny_onnx, path, _runner_of, _synthetic, Thresholds(min_agreement=0.0, max_f1_drop=100.0))
    assert not report.ok and any("Q/DQ rule violation" in f for f in report.failures)
