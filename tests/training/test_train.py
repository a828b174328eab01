"""Training, evaluation and explanation on tiny synthetic data sets (SYNTHETIC data, tiny models, a few epochs):
resume reproduces an uninterrupted run, the commands chain, and bad input ends in one line + exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cpgait.cli import main
from cpgait.export.checkpoint import load_checkpoint
from cpgait.runtime.core.layouts import COCO17
from cpgait.runtime.gait.feature_bank import REGISTRY
from cpgait.runtime.gait.features import SERIES_NAMES, with_masks
from cpgait.training.synth import write_dataset
from cpgait.training.train import EpochLog, TrainConfig, file_sha256, train

TINY = dict(window=32, stride=16, epochs=3, batch_size=16, width=0.05, embed_dim=8, patience=10)
TINY_ARGS = ["--window", "32", "--stride", "16", "--batch-size", "16", "--width", "0.05", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, 24, seed=5)
    return out


@pytest.fixture(scope="module")
def checkpoint(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    train(data, out, TrainConfig(**{**TINY, "epochs": 1}), device="cpu", show_progress=False)
    return out


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["cpgait", *args])
    with pytest.raises(SystemExit, match=r"^\d*$") as exit_info:  # an exit status, the message on stderr
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out + captured.err


class _Interrupt(Exception):
    def __init__(self) -> None:
        super().__init__("interrupted after epoch 2")


def test_resumed_run_ends_exactly_where_the_uninterrupted_run_ends(data: Path, tmp_path: Path) -> None:
    config = TrainConfig(**TINY)
    whole = train(data, tmp_path / "whole.pt", config, device="cpu", show_progress=False)

    def stop_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt, match="after epoch 2"):
        train(data, tmp_path / "part.pt", config, device="cpu", on_epoch=stop_after_two, show_progress=False)
    assert load_checkpoint(tmp_path / "part.pt").training["epochs_run"] == 2
    resumed = train(data, tmp_path / "part.pt", config, device="cpu", resume=True, show_progress=False)
    assert resumed.training["history"] == whole.training["history"]
    assert resumed.training["epochs_run"] == 3 and "resume" not in resumed.training
    assert all(torch.equal(resumed.state_dict[k], v) for k, v in whole.state_dict.items())


def test_resume_refuses_other_settings_and_finished_runs(data: Path, checkpoint: Path) -> None:
    from cpgait.errors import CpgaitError

    with pytest.raises(CpgaitError, match="other settings.*lr"):
        train(data, checkpoint, TrainConfig(**{**TINY, "epochs": 1, "lr": 0.1}), resume=True, show_progress=False)
    with pytest.raises(CpgaitError, match="already finished"):
        train(data, checkpoint, TrainConfig(**{**TINY, "epochs": 1}), resume=True, show_progress=False)


def test_checkpoint_carries_the_contract_and_says_synthetic(checkpoint: Path) -> None:
    ckpt = load_checkpoint(checkpoint)
    contract = ckpt.contract
    assert (contract.layout, contract.window, contract.fps, contract.streams) == ("coco17_feet", 32, 30.0, "fused")
    # every feature: the clinical ones first, then the per-joint bank (registry order), scalars with their masks
    assert contract.series_features == tuple(f.name for f in REGISTRY if f.kind == "series")
    assert contract.scalar_features == with_masks([f.name for f in REGISTRY if f.kind == "scalar"])
    assert contract.series_features[: len(SERIES_NAMES)] == SERIES_NAMES
    assert contract.synthetic and "SYNTHETIC" in contract.training_data
    assert set(contract.feature_joints) == set(COCO17.joints)
    split = {name: set(subjects) for name, subjects in ckpt.training["split"].items()}
    assert set(split) == {"train", "val", "test"} and all(split.values())
    assert not (split["train"] & split["test"] or split["train"] & split["val"] or split["val"] & split["test"])


def test_evaluate_on_the_test_split_sees_only_the_held_out_subjects(checkpoint: Path, data: Path) -> None:
    from cpgait.runtime.data.dataset import Dataset
    from cpgait.training.evaluate import evaluate

    held_out = set(load_checkpoint(checkpoint).training["split"]["test"])
    expected = sum(1 for record in Dataset.from_path(data) if record.subject_id in held_out)
    report = evaluate(checkpoint, data, split="test", device="cpu")
    assert 0 < report["recordings"]["n"] == expected < 24


def test_evaluate_and_explain_write_their_reports(
    monkeypatch, capsys, checkpoint: Path, data: Path, tmp_path: Path
) -> None:
    code, text = _cli(
        monkeypatch,
        capsys,
        "evaluate",
        str(checkpoint),
        str(data),
        "--split",
        "all",
        "--out",
        str(tmp_path / "eval"),
        "--device",
        "cpu",
    )
    assert code == 0, text
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["synthetic"] is True and report["split"] == "all"
    for level in ("windows", "recordings"):
        scores = report[level]
        assert 0 <= scores["accuracy"] <= 1 and np.asarray(scores["confusion"]).sum() == scores["n"]
    assert report["recordings"]["n"] == 24
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 0
    assert "macro-F1" in text and "kappa" in text
    assert report["subjects"]["n"] == len(report["per_subject"]) and "95 % bootstrap intervals" in text
    ci = report["subject_intervals"]["accuracy"]
    assert ci["lo"] <= ci["value"] == report["subjects"]["accuracy"] <= ci["hi"]

    code, text = _cli(
        monkeypatch,
        capsys,
        "explain",
        str(checkpoint),
        str(data),
        "--split",
        "all",
        "--out",
        str(tmp_path / "explain"),
        "--layer",
        "2",
        "--device",
        "cpu",
    )
    assert code == 0, text
    ranking = json.loads((tmp_path / "explain" / "joint_ranking.json").read_text())
    assert len(ranking["joints"]) == 17 and ranking["synthetic"] is True
    assert ranking["layer"] == 2 and ranking["model_sha256"] == file_sha256(checkpoint)
    values = [j["importance"] for j in ranking["joints"]]
    assert values == sorted(values, reverse=True) and values[0] == 1.0
    assert (tmp_path / "explain" / "joint_importance.png").stat().st_size > 0

    code, text = _cli(
        monkeypatch,
        capsys,
        "train",
        str(data),
        "--out",
        str(tmp_path / "top.pt"),
        "--epochs",
        "1",
        "--feature-joints",
        str(tmp_path / "explain" / "joint_ranking.json"),
        "--top-k",
        "3",
        *TINY_ARGS,
    )
    assert code == 0, text
    top = load_checkpoint(tmp_path / "top.pt")
    assert list(top.training["settings"]["joints"]) == [j["name"] for j in ranking["joints"][:3]]
    # the study's order: the ST-GCN starts from the explained checkpoint, identified by its hash
    assert top.training["init_skeleton_sha256"] == ranking["model_sha256"]
    assert top.training["feature_ranking"]["top_k"] == 3
    assert set(top.contract.feature_joints) <= {j["name"] for j in ranking["joints"][:3]}


def _relabelled(data: Path, out: Path, label: int) -> Path:
    out.mkdir()
    source = sorted(data.glob("*.npz"))[0]
    with np.load(source) as arrays:
        fields = {k: arrays[k] for k in arrays.files}
    np.savez(out / "bad.npz", **{**fields, "label": np.int64(label)})
    return out


@pytest.mark.parametrize(
    "case,expected",
    [
        ("too_short", r"24 of 24 recordings are too short for a 400-frame window.*have 1\d\d-[23]\d\d frames"),
        ("wrong_layout", "keypoints are in layout 'coco17' but the model was trained on 'coco17_feet'"),
        ("mixed_layouts", "several layouts"),
        ("label", "label is 7; expected 0-3"),
        ("corrupt_checkpoint", "not a readable cpgait checkpoint"),
        ("existing_out", "already exists; pass --overwrite"),
        ("ranking_without_k", "--feature-joints and --top-k go together"),
        ("top_k_too_big", "--top-k is 30"),
        ("streams", "--streams is 'both'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    case: str, expected: str, monkeypatch, capsys, data: Path, checkpoint: Path, tmp_path: Path
) -> None:
    out = str(tmp_path / "m.pt")
    if case == "too_short":
        args = ["train", str(data), "--out", out, *TINY_ARGS, "--window", "400"]
    elif case == "wrong_layout":
        write_dataset(tmp_path / "coco", 4, seed=1, layout="coco17")
        args = ["evaluate", str(checkpoint), str(tmp_path / "coco"), "--split", "all"]
    elif case == "mixed_layouts":
        write_dataset(tmp_path / "mixed" / "a", 4, seed=1, layout="coco17")
        write_dataset(tmp_path / "mixed" / "b", 4, seed=2)
        args = ["train", str(tmp_path / "mixed"), "--out", out, *TINY_ARGS]
    elif case == "label":
        args = ["train", str(_relabelled(data, tmp_path / "bad", 7)), "--out", out, *TINY_ARGS]
    elif case == "corrupt_checkpoint":
        (tmp_path / "c.pt").write_bytes(b"PK\x03\x04 truncated")
        args = ["evaluate", str(tmp_path / "c.pt"), str(data)]
    elif case == "existing_out":
        args = ["train", str(data), "--out", str(checkpoint), *TINY_ARGS]
    elif case == "ranking_without_k":
        args = ["train", str(data), "--out", out, "--feature-joints", "r.json", *TINY_ARGS]
    elif case == "top_k_too_big":
        (tmp_path / "r.json").write_text(json.dumps({"joints": [{"name": "left_hip", "importance": 1.0}] * 17}))
        args = [
            "train",
            str(data),
            "--out",
            out,
            "--feature-joints",
            str(tmp_path / "r.json"),
            "--top-k",
            "30",
            *TINY_ARGS,
        ]
    else:
        args = ["train", str(data), "--out", out, "--streams", "both", *TINY_ARGS]
    code, text = _cli(monkeypatch, capsys, *args)
    assert code == 2
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert text.startswith("error: ")
    import re

    assert re.search(expected, text), text


def test_early_stopping_and_the_best_epoch_restore(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation scores 0.3, 0.5, 0.5, 0.4 with patience 2: epoch 2 is the best (an equal score is no
    improvement), epochs 3 and 4 are stale, training stops after epoch 4 of 10, and the checkpoint holds the weights
    the model had when epoch 2 was validated."""
    import cpgait.training.train as training

    scores = iter([0.3, 0.5, 0.5, 0.4, 0.9, 0.9])
    weights: list[dict] = []
    real_predict = training.predict

    def predict(model, *args, **kwargs):
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_predict(model, *args, **kwargs)

    monkeypatch.setattr(training, "predict", predict)
    monkeypatch.setattr(training, "macro_f1", lambda confusion: next(scores))
    config = TrainConfig(**{**TINY, "epochs": 10, "patience": 2})
    result = train(data, tmp_path / "early.pt", config, device="cpu", show_progress=False)
    assert [r["val_macro_f1"] for r in result.training["history"]] == [0.3, 0.5, 0.5, 0.4]
    assert result.training["epochs_run"] == 4 and result.training["best_epoch"] == 2
    assert result.training["best_val_macro_f1"] == 0.5 and len(weights) == 4
    assert all(torch.equal(result.state_dict[k], v) for k, v in weights[1].items())
    assert not all(torch.equal(result.state_dict[k], v) for k, v in weights[3].items())  # training went on
    saved = load_checkpoint(tmp_path / "early.pt")
    assert all(torch.equal(saved.state_dict[k], v) for k, v in weights[1].items())


def test_the_epoch_log_stops_after_patience_epochs_without_a_better_score() -> None:
    log = EpochLog()
    assert log.running(epochs=5, patience=2) and log.best_epoch == -1
    improved = [log.add({"epoch": n + 1, "val_macro_f1": f}) for n, f in enumerate([0.0, 0.5, 0.5])]
    assert improved == [True, True, False]  # 0.0 beats the start (-1); an equal score is no improvement
    assert (log.epoch, log.best_epoch, log.best_score, log.stale) == (3, 2, 0.5, 1)
    assert log.running(epochs=5, patience=2) and not log.running(epochs=3, patience=2)  # the epoch budget
    assert log.add({"epoch": 4, "val_macro_f1": 0.4}) is False and log.stale == 2
    assert not log.running(epochs=5, patience=2) and log.running(epochs=5, patience=3)  # patience spent
    assert log.add({"epoch": 5, "val_macro_f1": 0.6}) is True and (log.stale, log.best_epoch) == (0, 5)
    assert [r["epoch"] for r in log.history] == [1, 2, 3, 4, 5]
