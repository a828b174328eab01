"""How separable are the GMFCS levels of a SYNTHETIC data set from the generator's own truth? (a ceiling estimate)

Reads the `<recording>.truth.json` files `cpgait synth` writes next to each walk and fits linear (LDA) and quadratic
(QDA, regularised) discriminants on two feature sets:
- all generator parameters: every number in the truth's `subject` record (the parameters the walk was drawn from:
  body proportions, cadence, step length, knee and foot targets, trunk, arms, variability, asymmetry ...);
- observable parameters: what a side-view video of one walk can show, as the generator measured it on that walk
  (cadence, step time, step length, speed, knee ROM and minimum per side, foot angle at contact per side, pelvis
  vertical excursion, mean trunk lean).
Each walk is one row; splits are subject-grouped (a subject's walks never on both sides) and stratified by level:
`--repeats` x `--folds` folds. Reported: test accuracy per split as mean, standard deviation and 2.5-97.5 %
range over the splits. A model that sees noisy keypoints instead of this truth should not be expected to beat it.
Uses scikit-learn (the `study` extra): a well-kept implementation of LDA/QDA and grouped stratified folds.

    python scripts/separability_ceiling.py DATA [--folds 5] [--repeats 20] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

OBSERVABLE = (
    "cadence_steps_per_min",
    "step_time_s",
    "step_length_leg",
    "speed_leg_per_s",
    "knee_rom_deg.left",
    "knee_rom_deg.right",
    "knee_min_deg.left",
    "knee_min_deg.right",
    "foot_angle_at_contact_deg.left",
    "foot_angle_at_contact_deg.right",
    "pelvis_vertical_excursion_leg",
    "trunk_lean_mean_deg",
)


def numbers(record: dict, prefix: str = "") -> dict[str, float]:
    """Every int/float leaf of a nested dict as {dotted.name: value} (booleans and lists left out)."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(numbers(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix + key] = float(value)
    return out


def load(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """Rows per walk: all-parameter matrix, observable matrix, labels, subjects; and the two column lists."""
    files = sorted(data.glob("*.truth.json"))
    if not files:
        raise SystemExit(f"error: {data}: no *.truth.json files (write them with `cpgait synth`)")
    truths = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    params = [{k: v for k, v in numbers(t["subject"]).items() if k != "level"} for t in truths]
    all_cols = sorted(set.intersection(*(set(p) for p in params)))
    observed = []
    for t in truths:
        flat = numbers(t)
        flat["trunk_lean_mean_deg"] = float(np.nanmean(np.asarray(t["trunk_lean_deg"], dtype=float)))
        observed.append(flat)
    obs_cols = [c for c in OBSERVABLE if all(c in o for o in observed)]
    x_all = np.array([[p[c] for c in all_cols] for p in params])
    x_obs = np.array([[o[c] for c in obs_cols] for o in observed])
    labels = np.array([t["level"] for t in truths])
    subjects = np.array([t["subject_id"] for t in truths])
    return x_all, x_obs, labels, subjects, [all_cols, obs_cols]


def ceiling(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, repeats: int) -> dict[str, dict]:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    finite = np.isfinite(x).all(axis=1)
    x, y, groups = x[finite], y[finite], groups[finite]
    models = {
        "LDA": lambda: make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()),
        "QDA": lambda: make_pipeline(StandardScaler(), QuadraticDiscriminantAnalysis(reg_param=0.1)),
    }
    out = {}
    for name, make in models.items():
        scores = []
        for repeat in range(repeats):
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=repeat)
            for train, test in splitter.split(x, y, groups):
                scores.append(float(np.mean(make().fit(x[train], y[train]).predict(x[test]) == y[test])))
        s = np.array(scores)
        out[name] = {
            "mean": round(float(s.mean()), 4),
            "std": round(float(s.std(ddof=1)), 4),
            "p2.5": round(float(np.quantile(s, 0.025)), 4),
            "p97.5": round(float(np.quantile(s, 0.975)), 4),
            "splits": len(s),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a folder written by `cpgait synth` (with *.truth.json)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    x_all, x_obs, y, groups, (all_cols, obs_cols) = load(args.data)
    result = {
        "data": str(args.data),
        "synthetic": True,
        "walks": len(y),
        "subjects": len(set(groups.tolist())),
        "folds": args.folds,
        "repeats": args.repeats,
        "all_parameters": {"columns": all_cols, **ceiling(x_all, y, groups, args.folds, args.repeats)},
        "observable": {"columns": obs_cols, **ceiling(x_obs, y, groups, args.folds, args.repeats)},
    }
    print(
        f"SYNTHETIC data {args.data}: {result['walks']} walks of {result['subjects']} subjects, "
        f"{args.repeats} x {args.folds}-fold subject-grouped stratified splits; test accuracy over splits"
    )
    for name in ("all_parameters", "observable"):
        for model in ("LDA", "QDA"):
            r = result[name][model]
            print(
                f"  {name:<15} ({len(result[name]['columns']):>2} columns) {model}: mean {r['mean']:.3f} "
                f"± {r['std']:.3f} (2.5-97.5 %: {r['p2.5']:.3f}-{r['p97.5']:.3f})"
            )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
