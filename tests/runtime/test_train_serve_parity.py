"""Train/serve parity: one recording through the training path and through the live loop's stages gives the model
identical inputs (same resampler, same gap rule, same stride, same feature code)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.data.dataset import Dataset
from cpgait.runtime.data.windows import build_windows
from cpgait.runtime.gait.features import SCALAR_NAMES, SERIES_NAMES
from cpgait.runtime.gait.resample import Resampler
from cpgait.runtime.live.gait_session import GaitSession


class FeedRecorder(Runner):
    """Keeps every feed the live session gives the classifier; answers uniform logits."""

    def __init__(self, contract: ModelContract) -> None:
        super().__init__()
        self.model_contract = contract
        self.feeds: list[dict[str, np.ndarray]] = []

    def _activate(self) -> None:
        self._specs = self.model_contract.input_specs()
        self._outputs = [self.model_contract.output_name]

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.feeds.append({k: v.copy() for k, v in feed.items()})
        return {self.model_contract.output_name: np.zeros((1, 4), dtype=np.float32)}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SYNTHETIC walk at 25 fps with the default pose-model noise and dropped points, so resampling and gaps
    are exercised."""
    from cpgait.training.synth import write_dataset

    out = tmp_path_factory.mktemp("parity")
    write_dataset(out, 4, seed=11, fps=25.0)
    return out


def test_training_windows_and_live_windows_feed_the_model_identically(recording: Path) -> None:
    contract = ModelContract(
        layout="coco17_feet",
        window=60,
        fps=30.0,
        series_features=SERIES_NAMES,
        scalar_features=SCALAR_NAMES,
        feature_joints=(),
    )
    record = next(iter(Dataset.from_path(recording)))
    trained, _ = build_windows([record], contract)  # the contract's default stride, as the kiosk

    runner = FeedRecorder(contract)
    session = GaitSession(contract, runner, min_valid_fraction=0.01)
    assert len(runner.feeds) == 1 and not any(v.any() for v in runner.feeds[0].values())  # the start-up probe
    runner.feeds.clear()
    resampler = Resampler(contract.fps)
    seq = record.load()
    ends: list[int] = []
    for k, frame in enumerate(seq.keypoints):
        for t, kp in resampler.push(k / seq.fps, frame):
            result = session.push(t, kp)
            if result is not None:
                ends.append(result.frame)  # frames pushed so far: the window ends here
    assert len(runner.feeds) >= 3 and len(trained) >= 3
    starts = [end - contract.window for end in ends]
    assert all(s % contract.default_stride == 0 for s in starts)
    compared = 0
    for start, feed in zip(starts, runner.feeds):
        index = start // contract.default_stride
        if index >= len(trained):
            break  # the training cut stops at the recording's last full stride
        for name in contract.input_names:
            np.testing.assert_allclose(feed[name][0], trained.inputs[name][index], rtol=0, atol=0, err_msg=name)
        compared += 1
    assert compared >= 3
