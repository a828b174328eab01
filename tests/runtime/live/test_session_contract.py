"""A classifier never fails silently: a model the runtime cannot feed or read is refused at start naming the file
and the field, and windows that cannot be classified are counted by cause."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract
from cpgait.runtime.core.tensors import TensorSpec
from cpgait.runtime.gait.features import SCALAR_NAMES, SERIES_NAMES, IncrementalFeatures
from cpgait.runtime.live.gait_session import (
    CLASSIFIER_INVALID,
    ESTIMATE,
    FAILING,
    FEATURES_FAILED,
    NO_LEG_SEEN,
    NOT_ENOUGH,
    GaitSession,
)

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "runtime" / "assets" / "reference.onnx"


def _with_contract(tmp_path: Path, **changes: object) -> Path:
    """The reference model's graph with its contract changed (the file a user might get from a bad export)."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(REFERENCE))
    prop = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    contract = json.loads(prop.value)
    contract.update(changes)
    prop.value = json.dumps(contract)
    path = tmp_path / "changed.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "changes,words",
    [
        ({"series_features": ["knee_flexion_left", "hip_sway"]}, "series_features names 'hip_sway'"),
        ({"scalar_features": ["cadence", "bogus"]}, "scalar_features names 'bogus'"),
        ({"window": 100}, "'skeleton' has shape \\(N, 3, 124, 17\\) but contract field window implies"),
        ({"class_names": ["a", "b", "c"]}, "returns 4 logits per window but contract field class_names lists 3"),
        ({"output_name": "probabilities"}, "output_name is 'probabilities'"),
        ({"streams": "gait"}, "do not match contract field streams 'gait'"),
    ],
)
def test_a_model_the_runtime_cannot_serve_is_refused_at_start(tmp_path: Path, changes: dict, words: str) -> None:
    path = _with_contract(tmp_path, **changes)
    contract = ModelContract.from_onnx(path)
    with pytest.raises(CpgaitError, match=words) as info:
        GaitSession(contract, RUNTIME_BACKENDS.make_runner(path, "ort-cpu"), where=str(path))
    assert str(path) in str(info.value)


def test_the_reference_model_fits() -> None:
    contract = ModelContract.from_onnx(REFERENCE)
    session = GaitSession(contract, RUNTIME_BACKENDS.make_runner(REFERENCE, "ort-cpu"), where=str(REFERENCE))
    assert session.estimate().state == NOT_ENOUGH


class _Runner(Runner):
    def __init__(self, contract: ModelContract, logits: list[float]) -> None:
        super().__init__()
        self.contract, self.logits = contract, logits

    def _activate(self) -> None:
        t, s, c = self.contract.window, len(self.contract.series_features), len(self.contract.scalar_features)
        shapes = {"skeleton": (None, 3, t, 17), "gait_series": (None, s, t), "gait_scalars": (None, c)}
        self._specs = [TensorSpec(n, np.dtype(np.float32), shapes[n]) for n in self.contract.input_names]
        self._outputs = ["logits"]

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"logits": np.array([self.logits], dtype=np.float32)}


def _walk(session: GaitSession, frames: int) -> None:
    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = 0.9
    kp[:, 0] = np.arange(17) * 10.0 + 300
    kp[:, 1] = np.arange(17) * 20.0 + 100
    for k in range(frames):
        session.push(k / 30, kp + [k, 0, 0])


def _session(logits: list[float]) -> GaitSession:
    contract = ModelContract(
        layout="coco17", window=30, fps=30.0, series_features=SERIES_NAMES, scalar_features=SCALAR_NAMES,
        feature_joints=(),
    )  # fmt: skip
    return GaitSession(contract, _Runner(contract, logits), stride=10)


def test_a_feature_error_is_not_taken_for_not_enough_walking(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: IncrementalFeatures, *args: object) -> dict:
        raise CpgaitError("a defect in the features")

    session = _session([1.0, 0.0, 0.0, 0.0])
    monkeypatch.setattr(IncrementalFeatures, "inputs", broken)
    _walk(session, 60)
    est = session.estimate()
    assert est.state == FAILING and dict(est.failures) == {FEATURES_FAILED: 4}
    assert est.to_json()["window_failures"] == {FEATURES_FAILED: 4}
    assert session.last_failure == f"{FEATURES_FAILED}: a defect in the features"


def test_no_leg_seen_alone_still_means_not_enough_walking(monkeypatch: pytest.MonkeyPatch) -> None:
    from cpgait.runtime.gait.keypoints import NoLegSeen

    def legless(self: IncrementalFeatures, *args: object) -> dict:
        raise NoLegSeen("no leg")

    session = _session([1.0, 0.0, 0.0, 0.0])
    monkeypatch.setattr(IncrementalFeatures, "inputs", legless)
    _walk(session, 40)
    est = session.estimate()
    assert est.state == NOT_ENOUGH and dict(est.failures) == {NO_LEG_SEEN: 2}


def test_non_finite_logits_are_counted_and_a_good_window_still_counts() -> None:
    session = _session([float("nan"), 0.0, 0.0, 0.0])
    _walk(session, 40)
    assert session.estimate().state == FAILING and session.failures_total[CLASSIFIER_INVALID] == 2
    session.runner.logits = [3.0, 0.0, 0.0, 0.0]
    _walk(session, 10)
    est = session.estimate()
    assert est.state == ESTIMATE and est.windows == 1 and dict(est.failures) == {CLASSIFIER_INVALID: 2}
    session.reset()  # a new subject: its own counts, the run's totals kept
    assert session.estimate().failures == () and session.failures_total[CLASSIFIER_INVALID] == 2
