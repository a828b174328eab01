"""`make paper-table`: the study's ablation, reproduced on SYNTHETIC data (not a clinical result).

For each training seed: an ST-GCN alone (skeleton), the gait-feature stream alone (gait), the fused model with every
gait feature (fused, all joints) and the fused model whose gait features come from the top-k Grad-CAM joints of that
seed's ST-GCN (fused, Grad-CAM joints: the study's contribution-guided selection). k is the smallest number of
top-ranked joints from which at least one per-frame series and one per-window scalar can be computed (the gait
stream needs both). When those joints allow every feature, the model would be the fused one again (same seed, same
features, deterministic training), so its figures are reused and the table says so. Every model is evaluated on its
own held-out test subjects; the table gives recording-level accuracy, macro-F1 and linearly weighted kappa as
mean ± std over the seeds, and window-level accuracy. Writes OUT/table.md and OUT/results.json.

    python scripts/paper_table.py DATA OUT [--seeds 0,1,2] [--epochs 15] [--stride 62] [--width 0.25]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from cpgait.runtime.gait.features import FEATURES, select_features
from cpgait.training.evaluate import evaluate
from cpgait.training.gradcam import explain
from cpgait.training.train import TrainConfig, train

VARIANTS = ("skeleton", "gait", "fused", "fused-gradcam")
LABELS = {
    "skeleton": "skeleton only (ST-GCN)",
    "gait": "gait features only",
    "fused": "fused, all joints",
    "fused-gradcam": "fused, Grad-CAM joints",
}


def gradcam_joints(ranking_file: Path) -> tuple[str, ...]:
    """The fewest top-ranked joints that yield at least one gait series and one gait scalar."""
    names = [j["name"] for j in json.loads(ranking_file.read_text(encoding="utf-8"))["joints"]]
    kinds = {f.name: f.kind for f in FEATURES}
    for k in range(1, len(names) + 1):
        if {kinds[f] for f in select_features(names[:k])} == {"series", "scalar"}:
            return tuple(names[:k])
    raise SystemExit(f"{ranking_file}: no top-k of its joints allows a gait stream")


def run_seed(data: Path, out: Path, seed: int, args: argparse.Namespace) -> dict[str, dict]:
    """Train and evaluate the four variants for one seed; returns the evaluation reports by variant."""
    common = dict(epochs=args.epochs, stride=args.stride, width=args.width, seed=seed, patience=args.patience)
    folder = out / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    reports = {}
    for variant in VARIANTS:
        joints: tuple[str, ...] = ()
        if variant == "fused-gradcam":
            explain(folder / "skeleton.pt", data, folder / "explain", split="train", overwrite=True)
            joints = gradcam_joints(folder / "explain" / "joint_ranking.json")
            if len(select_features(joints)) == len(FEATURES):
                reports[variant] = {**reports["fused"], "feature_joints": list(joints), "same_as_fused": True}
                continue
        streams = "fused" if variant.startswith("fused") else variant
        started = time.monotonic()
        ckpt = folder / f"{variant}.pt"
        train(data, ckpt, TrainConfig(streams=streams, joints=joints, **common), overwrite=True, show_progress=False)
        reports[variant] = evaluate(ckpt, data, split="test")
        reports[variant].update(
            train_seconds=round(time.monotonic() - started, 1),
            feature_joints=list(joints),
            features=len(select_features(joints)) if joints else len(FEATURES),
        )
    return reports


def mean_std(values: list[float | None]) -> str:
    """Mean ± sample std of the defined values (kappa and F1 are None when a test split makes them undefined)."""
    defined = [v for v in values if v is not None]
    if not defined:
        return "n/a"
    spread = np.std(defined, ddof=1) if len(defined) > 1 else 0.0
    note = "" if len(defined) == len(values) else f" (n = {len(defined)})"
    return f"{np.mean(defined):.3f} ± {spread:.3f}{note}"


def table(results: dict[int, dict[str, dict]], args: argparse.Namespace) -> str:
    """Markdown: one row per variant, mean ± sample std over the seeds."""
    seeds = sorted(results)
    rows = [
        "| model | recording accuracy | recording macro-F1 | recording kappa (linear) | window accuracy |",
        "|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        rec = [results[s][variant]["recordings"] for s in seeds]
        win = [results[s][variant]["windows"] for s in seeds]
        rows.append(
            f"| {LABELS[variant]} | {mean_std([r['accuracy'] for r in rec])} | "
            f"{mean_std([r['macro_f1'] for r in rec])} | {mean_std([r['kappa_linear'] for r in rec])} | "
            f"{mean_std([w['accuracy'] for w in win])} |"
        )
    joints = "; ".join(
        f"seed {s}: top {len(results[s]['fused-gradcam']['feature_joints'])} "
        f"({len(select_features(results[s]['fused-gradcam']['feature_joints']))} of {len(FEATURES)} features"
        f"{', the fused model again' if results[s]['fused-gradcam'].get('same_as_fused') else ''})"
        for s in seeds
    )
    tests = ", ".join(str(results[s]["skeleton"]["recordings"]["n"]) for s in seeds)
    rows += [
        "",
        f"SYNTHETIC data ({args.data}), seeds {', '.join(map(str, seeds))} (split, initialisation, "
        f"sampling); test recordings per seed: {tests}; mean ± sample std over seeds. Grad-CAM joints: "
        f"{joints}. Training: {args.epochs} epochs at most, stride {args.stride}, width {args.width}.",
    ]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="labelled SYNTHETIC sequences (cpgait synth)")
    parser.add_argument("out", type=Path, help="folder for the checkpoints, table.md and results.json")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--stride", type=int, default=62)
    parser.add_argument("--width", type=float, default=0.25)
    args = parser.parse_args(argv)
    results = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        results[seed] = run_seed(args.data, args.out, seed, args)
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = table(results, args)
    (args.out / "table.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
