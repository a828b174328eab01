"""`make paper-table`: the study's ablation, reproduced on SYNTHETIC data (not a clinical result).

For each training seed: an ST-GCN alone (skeleton), the gait-feature stream alone (gait), the fused model with every
gait feature (fused, all joints) and the fused model whose gait features come from the top-k Grad-CAM joints of that
seed's ST-GCN (fused, Grad-CAM joints: the study's contribution-guided selection). Every model is evaluated on its
own held-out test subjects; the table gives recording-level accuracy, macro-F1 and linearly weighted kappa as
mean ± std over the seeds, and window-level accuracy. Writes OUT/table.md and OUT/results.json.

    python scripts/paper_table.py DATA OUT [--seeds 0,1,2] [--top-k 8] [--epochs 15] [--stride 62] [--width 0.25]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from cpgait.export.evaluate import evaluate
from cpgait.export.explain import explain
from cpgait.export.train import TrainConfig, joints_from_ranking, train

VARIANTS = ("skeleton", "gait", "fused", "fused-gradcam")
LABELS = {"skeleton": "skeleton only (ST-GCN)", "gait": "gait features only", "fused": "fused, all joints",
          "fused-gradcam": "fused, Grad-CAM joints"}


def run_seed(data: Path, out: Path, seed: int, args: argparse.Namespace) -> dict[str, dict]:
    """Train and evaluate the four variants for one seed; returns the evaluation reports by variant."""
    common = dict(epochs=args.epochs, stride=args.stride, width=args.width, seed=seed, patience=args.patience)
    reports = {}
    for variant in VARIANTS:
        ckpt = out / f"seed{seed}" / f"{variant}.pt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        joints: tuple[str, ...] = ()
        if variant == "fused-gradcam":
            ranking = out / f"seed{seed}" / "explain"
            explain(out / f"seed{seed}" / "skeleton.pt", data, ranking, split="train", overwrite=True)
            joints = joints_from_ranking(ranking / "joint_ranking.json", args.top_k)
        streams = "fused" if variant.startswith("fused") else variant
        started = time.monotonic()
        train(data, ckpt, TrainConfig(streams=streams, joints=joints, **common), overwrite=True, show_progress=False)
        reports[variant] = evaluate(ckpt, data, split="test")
        reports[variant]["train_seconds"] = round(time.monotonic() - started, 1)
        reports[variant]["feature_joints"] = list(joints)
    return reports


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def table(results: dict[int, dict[str, dict]], args: argparse.Namespace) -> str:
    """Markdown: one row per variant, mean ± sample std over the seeds."""
    seeds = sorted(results)
    rows = ["| model | recording accuracy | recording macro-F1 | recording kappa (linear) | window accuracy |",
            "|---|---|---|---|---|"]
    for variant in VARIANTS:
        rec = [results[s][variant]["recordings"] for s in seeds]
        win = [results[s][variant]["windows"] for s in seeds]
        rows.append(f"| {LABELS[variant]} | {mean_std([r['accuracy'] for r in rec])} | "
                    f"{mean_std([r['macro_f1'] for r in rec])} | {mean_std([r['kappa_linear'] for r in rec])} | "
                    f"{mean_std([w['accuracy'] for w in win])} |")
    joints = "; ".join(f"seed {s}: {', '.join(results[s]['fused-gradcam']['feature_joints'])}" for s in seeds)
    tests = ", ".join(str(results[s]["skeleton"]["recordings"]["n"]) for s in seeds)
    rows += ["", f"SYNTHETIC data ({args.data}), seeds {', '.join(map(str, seeds))} (split, initialisation, "
             f"sampling); test recordings per seed: {tests}; mean ± sample std over seeds. Grad-CAM top-{args.top_k} "
             f"joints: {joints}. Training: {args.epochs} epochs at most, stride {args.stride}, width {args.width}."]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="labelled SYNTHETIC sequences (cpgait synth)")
    parser.add_argument("out", type=Path, help="folder for the checkpoints, table.md and results.json")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--top-k", type=int, default=8)
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
