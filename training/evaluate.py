"""`cpgait evaluate`: a checkpoint's accuracy, macro-F1 and weighted kappa per window, recording and subject.

A recording's (subject's) prediction is the class with the highest mean probability of its windows. Subjects are
the independent unit: the subject-level figures carry 95 % bootstrap intervals over subjects
(`training.resampling`). `--split test` evaluates the recordings of the subjects the checkpoint held out at
training time (stored in it); `--split all` every recording.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, atomic_output, refuse_overwrite
from cpgait.export.checkpoint import Checkpoint, load_checkpoint
from cpgait.runtime.core.metrics import classification_scores, confusion_text
from cpgait.runtime.data.dataset import SPLITS, Dataset, Record
from cpgait.runtime.data.windows import WindowSet, build_windows
from cpgait.training.resampling import bootstrap_scores, subject_probabilities
from cpgait.training.train import pick_device, predict

EVALUATE_SPLITS = (*SPLITS, "all")


def split_records(checkpoint: Checkpoint, dataset: Dataset, split: str, data: Path) -> list[Record]:
    """The recordings of `split`: the checkpoint's own train/val/test subjects, or everything for "all"."""
    if split not in EVALUATE_SPLITS:
        raise CpgaitError(f"--split is {split!r}; expected one of {', '.join(EVALUATE_SPLITS)}")
    if split == "all":
        return list(dataset)
    subjects = checkpoint.training.get("split", {}).get(split)
    if subjects is None:
        raise CpgaitError(f"{checkpoint.path}: holds no record of its {split} subjects; use --split all")
    chosen = [r for r in dataset if r.subject_id in set(subjects)]
    if not chosen:
        raise CpgaitError(
            f"{data}: none of its {len(dataset.subjects)} subjects is among the checkpoint's {len(subjects)} "
            f"{split} subjects (another data set?); use --split all"
        )
    return chosen


def recording_probabilities(windows: WindowSet, probs: np.ndarray) -> np.ndarray:
    """Mean window probability of each recording, `[R, C]`."""
    recording = windows.recording
    if recording is None:
        raise ValueError("window set without a recording index (not built from recordings)")
    total = np.zeros((len(windows.recording_ids), probs.shape[1]))
    np.add.at(total, recording, probs)
    counts = np.bincount(recording, minlength=len(windows.recording_ids))
    return total / np.maximum(counts, 1)[:, None]


def evaluate(
    checkpoint_path: str | Path,
    data: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    overwrite: bool = False,
    stride: int | None = None,
    device: str = "auto",
    batch_size: int = 64,
) -> dict:
    """Evaluate, print the figures and confusion matrices, and write JSON + PNG into `out` when given."""
    data = Path(data)
    checkpoint = load_checkpoint(checkpoint_path)
    contract = checkpoint.contract
    files = {}
    if out is not None:
        files = {"json": Path(out) / "evaluation.json", "png": Path(out) / "confusion.png"}
        for path in files.values():
            refuse_overwrite(path, overwrite)
    stride = stride or int(checkpoint.training.get("settings", {}).get("stride", contract.default_stride))
    records = split_records(checkpoint, Dataset.from_path(data), split, data)
    windows, note = build_windows(records, contract, stride, where=f"{data} ({split})")
    dev = pick_device(device)
    probs = predict(checkpoint.model(dev), windows.inputs, batch_size, dev)
    classes = len(contract.class_names)
    rec_probs = recording_probabilities(windows, probs)
    subject_of = {r.recording_id: r.subject_id for r in records}
    subjects = np.array([subject_of[r] for r in windows.recording_ids])[np.asarray(windows.recording)]
    ids, subj_probs, subj_labels = subject_probabilities(probs, subjects, windows.labels)
    subj_pred = subj_probs.argmax(1)
    report = {
        "checkpoint": str(checkpoint_path),
        "data": str(data),
        "split": split,
        "synthetic": contract.synthetic,
        "training_data": contract.training_data,
        "streams": contract.streams,
        "class_names": list(contract.class_names),
        "window": contract.window,
        "fps": contract.fps,
        "stride": stride,
        "skipped": note,
        "windows": classification_scores(windows.labels, probs.argmax(1), classes),
        "recordings": classification_scores(windows.recording_labels(), rec_probs.argmax(1), classes),
        "subjects": classification_scores(subj_labels, subj_pred, classes),
        "subject_intervals": bootstrap_scores(subj_labels, subj_pred, classes),
        "per_subject": [
            {
                "subject": sid,
                "label": int(lab),
                "predicted": int(pred),
                "probabilities": [round(float(p), 4) for p in pr],
            }
            for sid, lab, pred, pr in zip(ids, subj_labels, subj_pred, subj_probs)
        ],
    }
    print(summary_text(report))
    if files:
        with atomic_output(files["json"], overwrite) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        with atomic_output(files["png"], overwrite) as tmp:
            plot_confusions(report, tmp)
        print(f"wrote {files['json']} and {files['png']}")
    return report


def summary_text(report: dict) -> str:
    """The figures and both confusion matrices as plain text."""
    names = report["class_names"]
    lines = [
        f"{report['checkpoint']} on {report['data']} ({report['split']} split)"
        + ("  [model trained on SYNTHETIC data]" if report["synthetic"] else "")
    ]
    if report["skipped"]:
        lines.append(f"note: {report['skipped']}")
    for level in ("windows", "recordings", "subjects"):
        s = report[level]
        kappa = "n/a" if s["kappa_linear"] is None else f"{s['kappa_linear']:.3f}"
        f1 = "n/a" if s["macro_f1"] is None else f"{s['macro_f1']:.3f}"
        lines += [
            f"{level:>10}: n {s['n']:5d}  accuracy {s['accuracy']:.3f}  macro-F1 {f1}  kappa (linear) {kappa}",
            confusion_text(np.asarray(s["confusion"]), names),
        ]
    ci = report["subject_intervals"]
    lines.append(
        f"95 % bootstrap intervals over {report['subjects']['n']} subjects: "
        + ", ".join(f"{m} {interval_text(ci[m])}" for m in ("accuracy", "macro_f1", "kappa_linear"))
    )
    return "\n".join(lines)


def interval_text(value: dict) -> str:
    """'0.812 [0.760, 0.858]' (n/a where undefined)."""
    v, lo, hi = value["value"], value["lo"], value["hi"]
    if v is None or lo is None:
        return "n/a"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def plot_confusions(report: dict, path: Path) -> None:
    """Window- and recording-level confusion matrices side by side, counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = report["class_names"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
    for ax, level in zip(axes, ("windows", "recordings")):
        cm = np.asarray(report[level]["confusion"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(names)), names, rotation=30)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{level}: accuracy {report[level]['accuracy']:.2f}, n = {report[level]['n']}")
    fig.suptitle(
        f"{Path(report['checkpoint']).name}, {report['split']} split"
        + (" (SYNTHETIC data)" if report["synthetic"] else "")
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)
