"""Windows drawn from sequence files: stratified selection, counts, and the errors a user meets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.data.windows import _round_robin, load_windows, synthetic_windows


def test_round_robin_gives_every_label_an_equal_share_until_one_runs_out() -> None:
    pools = [range(0, 10), range(10, 20), range(20, 23), range(23, 33)]
    labels = np.array([0] * 10 + [1] * 10 + [2] * 3 + [3] * 10)
    assert np.bincount(labels[_round_robin(pools, 12)], minlength=4).tolist() == [3, 3, 3, 3]
    after = np.bincount(labels[_round_robin(pools, 21)], minlength=4)
    assert after[2] == 3 and after.sum() == 21 and abs(after[0] - after[3]) <= 1
    assert sorted(_round_robin(pools, None)) == list(range(33))


def test_synthetic_windows_follow_the_contract_shapes(tiny_onnx: Path) -> None:
    contract = ModelContract.from_onnx(tiny_onnx)
    windows = synthetic_windows(contract, 5)
    assert windows.inputs["skeleton"].shape == (5, 3, contract.window, 17)
    assert windows.inputs["gait_series"].shape == (5, len(contract.series_features), contract.window)
    assert windows.inputs["gait_scalars"].shape == (5, len(contract.scalar_features))
    assert not windows.labelled and "synthetic" in windows.origin


def test_load_windows_draws_a_balanced_count(tiny_onnx: Path, synth_data: Path) -> None:
    contract = ModelContract.from_onnx(tiny_onnx)
    windows = load_windows(synth_data, contract, count=40)
    assert len(windows) == 40 and windows.labelled
    assert np.bincount(windows.labels, minlength=4).tolist() == [10, 10, 10, 10]
    assert all(np.isfinite(a).all() and a.dtype == np.float32 for a in windows.inputs.values())


def test_too_few_windows_says_how_many_were_found(tiny_onnx: Path, synth_data: Path) -> None:
    contract = ModelContract.from_onnx(tiny_onnx)
    with pytest.raises(CpgaitError, match=r"found \d+ window\(s\).*at least 100000 are needed"):
        load_windows(synth_data, contract, minimum=100000)


def test_wrong_layout_names_the_file(tiny_onnx: Path, tmp_path: Path) -> None:
    from cpgait.training.synth import write_dataset

    paths = write_dataset(tmp_path, 4, seed=0, layout="coco17")
    contract = ModelContract.from_onnx(tiny_onnx)
    with pytest.raises(
        CpgaitError,
        match=r"\.npz: keypoints are in layout 'coco17' but the model was trained on "
        r"'coco17_feet'",
    ) as info:
        load_windows(tmp_path, contract)
    assert any(str(p) in str(info.value) for p in paths)
