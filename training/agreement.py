"""`cpgait agreement`: how well cpgait's gait features agree with truth, per recording -- the measurement that
Kidziński et al. (2020) make for their video model against the gait lab.

Truth is the `<name>.truth.json` next to each sequence `<name>.npz`: the gait lab's values written by
`cpgait import gaitlab`, or the synthetic generator's true parameters written by `cpgait synth`. Both use the same
keys for the same quantity (`cadence_steps_per_min`, `speed_m_per_s`, `knee_min_deg` per side, ...).

A recording's feature values: the per-window scalars of `cpgait.runtime.gait.features` on windows of `WINDOW_S`
seconds every `STRIDE_S` seconds (the paper's 124 frames every 31 at 25 fps); a window is used when none of the leg
points (hips, knees, ankles, and toes where the layout has feet; the paper's choice) is missing in more than
`MAX_MISSING` of its frames; each feature is the median over the used windows of its defined values. Recordings
walk back and forth, and a window holds one walking direction at most; the median keeps a window that spans a turn
from pulling the value.

Per compared quantity over recordings: n, Pearson r with its 95 % interval (Fisher z), and where feature and truth
share a unit, the mean absolute error and the bias (mean of feature - truth). Speed is compared in leg lengths/s
when the truth has it (synthetic) and, correlation only, against m/s (the lab's unit: a video without a scale
cannot give metres). Sides are also pooled (left and right as separate samples), as the paper does for knee flexion
at maximum extension.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, refuse_overwrite
from cpgait.runtime.core.layouts import get_layout, to_coco17
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.data.dataset import Dataset
from cpgait.runtime.gait.features import SCALAR_NAMES, SPECS, compute_features

WINDOW_S = 124 / 25  # the paper's windows: 124 frames at 25 fps
STRIDE_S = 31 / 25
MAX_MISSING = 0.25  # the paper's rule for a usable window (max share of missing frames over the leg points)
_LEG_POINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
_TOES = ("left_toe", "right_toe")

# The paper's video-vs-lab correlations on its test set (repository stanfordnmbl/mobile-gaitlab, Apache-2.0,
# training/figures/fig_data/SuppFig3.csv): a CNN and hand-made features with a random forest, both fitted to the lab
# values on the training videos. cpgait's features are measured, not fitted.
PAPER_R = {
    "cadence": {"cnn": 0.79, "random forest": 0.607},
    "speed vs m/s": {"cnn": 0.735, "random forest": 0.735},
    "knee_peak_extension (both sides)": {"cnn": 0.84, "random forest": 0.759},
}


@dataclass(frozen=True)
class Pair:
    """A compared quantity: feature(s) against truth key path(s), pooled when several; unit None = r only."""

    name: str
    items: tuple[tuple[str, tuple[str, ...]], ...]  # (feature, truth key path)
    unit: str | None

    def __post_init__(self) -> None:
        unknown = [f for f, _ in self.items if f not in SCALAR_NAMES]
        if unknown or not self.items:
            raise ValueError(f"pair {self.name}: features {unknown} are not scalar gait features")


def _sides(feature: str, truth: str, unit: str) -> list[Pair]:
    per_side = [Pair(f"{feature}_{s}", ((f"{feature}_{s}", (truth, s)),), unit) for s in ("left", "right")]
    pooled = Pair(f"{feature} (both sides)", tuple(p.items[0] for p in per_side), unit)
    return [*per_side, pooled]


PAIRS: tuple[Pair, ...] = (
    Pair("cadence", (("cadence", ("cadence_steps_per_min",)),), "steps/min"),
    Pair("step_time", (("step_time", ("step_time_s",)),), "s"),
    Pair("speed", (("speed", ("speed_leg_per_s",)),), "leg/s"),
    Pair("speed vs m/s", (("speed", ("speed_m_per_s",)),), None),
    Pair("step_length", (("step_length", ("step_length_leg",)),), "leg"),
    *_sides("knee_rom", "knee_rom_deg", "deg"),
    *_sides("knee_peak_extension", "knee_min_deg", "deg"),
)


def truth_path(sequence_path: Path) -> Path:
    """`<name>.truth.json` next to `<name>.npz`."""
    return sequence_path.with_name(sequence_path.stem + ".truth.json")


def read_truth(path: Path) -> dict:
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CpgaitError(
            f"{path}: not a truth file ({exc}); expected the JSON written by cpgait synth/import"
        ) from None
    if not isinstance(truth, dict):
        raise CpgaitError(f"{path}: holds {type(truth).__name__}; expected a JSON object of truth values")
    return truth


def truth_value(truth: dict, keys: tuple[str, ...]) -> float | None:
    """The number at a key path (e.g. ("knee_min_deg", "left")); None when absent, null or not finite."""
    value: object = truth
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def recording_features(seq: KeypointSequence, window_s: float = WINDOW_S, stride_s: float = STRIDE_S) -> dict:
    """Median per-window scalar features of a recording, and how many windows there were and were used."""
    window = max(2, round(window_s * seq.fps))
    stride = max(1, round(stride_s * seq.fps))
    keypoints, name = to_coco17(seq.keypoints, seq.layout)
    layout = get_layout(name)
    legs = [layout.index(j) for j in _LEG_POINTS + (_TOES if set(_TOES) <= set(layout.joints) else ())]
    missing = keypoints[:, legs, 2] <= 0
    starts = range(0, seq.num_frames - window + 1, stride)
    rows = []
    for start in starts:
        if missing[start : start + window].mean(axis=0).max() > MAX_MISSING:
            continue
        feats = compute_features(keypoints[start : start + window], name, seq.fps)
        rows.append(feats.scalars.astype(np.float64))
    values = {}
    if rows:
        table = np.stack(rows)
        for i, name in enumerate(SCALAR_NAMES):
            finite = table[np.isfinite(table[:, i]), i]
            values[name] = float(np.median(finite)) if len(finite) else None
    return {"features": values, "windows": len(starts), "windows_used": len(rows)}


def pearson_interval(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Pearson r and its 95 % interval (Fisher z; needs n >= 4); None where undefined (n < 3 or no spread)."""
    n = len(x)
    if n < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None, None, None
    r = float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))
    if n < 4 or abs(r) == 1.0:
        return r, None, None
    z, half = math.atanh(r), 1.959964 / math.sqrt(n - 3)
    return r, math.tanh(z - half), math.tanh(z + half)


def compare(rows: list[dict]) -> list[dict]:
    """The statistics of every pair that has at least one recording with both values (see the module docstring)."""
    results = []
    for pair in PAIRS:
        xs, ys = [], []
        for row in rows:
            for feature, keys in pair.items:
                x, y = row["features"].get(feature), truth_value(row["truth"], keys)
                if x is not None and y is not None:
                    xs.append(x)
                    ys.append(y)
        if not xs:
            continue
        fx, ty = np.asarray(xs), np.asarray(ys)
        r, lo, hi = pearson_interval(fx, ty)
        same_unit = pair.unit is not None
        results.append(
            {
                "name": pair.name,
                "features": [f for f, _ in pair.items],
                "truth": [".".join(k) for _, k in pair.items],
                "unit": pair.unit,
                "feature_unit": SPECS[pair.items[0][0]].unit,
                "n": len(fx),
                "r": r,
                "r_95ci": None if lo is None else [lo, hi],
                "mae": float(np.mean(np.abs(fx - ty))) if same_unit else None,
                "bias": float(np.mean(fx - ty)) if same_unit else None,
                "feature_mean": float(fx.mean()),
                "truth_mean": float(ty.mean()),
                "paper_r": PAPER_R.get(pair.name),
                "values": {"feature": [round(v, 5) for v in xs], "truth": [round(v, 5) for v in ys]},
            }
        )
    return results


def agreement(
    data: str | Path,
    out: str | Path | None = None,
    window_s: float = WINDOW_S,
    stride_s: float = STRIDE_S,
    overwrite: bool = False,
) -> dict:
    """Compute the report for the sequences in `data` (folder or manifest), print it, write it into `out`."""
    for name, value in (("--window-s", window_s), ("--stride-s", stride_s)):
        if not (math.isfinite(value) and value > 0):
            raise CpgaitError(f"{name} is {value}; expected seconds > 0")
    files = {}
    if out is not None:
        files = {k: Path(out) / f"agreement.{k}" for k in ("json", "md", "png")}
        for path in files.values():
            refuse_overwrite(path, overwrite)
    dataset = Dataset.from_path(data)
    rows, no_truth, no_window = [], 0, 0
    for record in dataset:
        path = truth_path(record.path)
        if not path.is_file():
            no_truth += 1
            continue
        feats = recording_features(record.load(), window_s, stride_s)
        no_window += feats["windows_used"] == 0
        rows.append({"recording_id": record.recording_id, "truth": read_truth(path), **feats})
    if not rows:
        raise CpgaitError(
            f"{data}: none of its {len(dataset)} sequences has a truth file (<name>.truth.json next to <name>.npz); "
            "expected the output of cpgait synth or cpgait import gaitlab"
        )
    kinds = {"synthetic" if r["truth"].get("synthetic") else "lab" for r in rows}
    report = {
        "data": str(data),
        "truth": kinds.pop() if len(kinds) == 1 else "mixed synthetic and lab",
        "recordings": len(dataset),
        "with_truth": len(rows),
        "without_truth_file": no_truth,
        "without_usable_window": no_window,
        "window_s": window_s,
        "stride_s": stride_s,
        "max_missing": MAX_MISSING,
        "comparisons": compare(rows),
    }
    print(summary_text(report))
    if files:
        files["json"].parent.mkdir(parents=True, exist_ok=True)
        files["json"].write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        files["md"].write_text(summary_markdown(report), encoding="utf-8")
        plot_agreement(report, files["png"])
        print(f"wrote {files['json']}, {files['md']} and {files['png']}")
    return report


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table_rows(report: dict) -> list[list[str]]:
    rows = []
    for c in report["comparisons"]:
        ci = "" if c["r_95ci"] is None else f" [{_fmt(c['r_95ci'][0])}, {_fmt(c['r_95ci'][1])}]"
        paper = ", ".join(f"{k} {v:g}" for k, v in (c["paper_r"] or {}).items())
        rows.append(
            [
                c["name"],
                " / ".join(c["truth"]),
                str(c["n"]),
                _fmt(c["r"]) + ci,
                _fmt(c["mae"]),
                _fmt(c["bias"]),
                c["unit"] or "units differ",
                paper,
            ]
        )
    return rows


_HEADER = ["feature", "truth", "n", "r [95% CI]", "MAE", "bias", "unit", "paper r (video model vs lab)"]


def _caption(report: dict) -> str:
    return (
        f"{report['data']}: {report['with_truth']} of {report['recordings']} recordings with {report['truth']} truth "
        f"({report['without_usable_window']} without a usable window); windows {report['window_s']:.2f} s every "
        f"{report['stride_s']:.2f} s, used when no leg point is missing in more than {report['max_missing']:.0%} of "
        "frames; a recording's value is the median over its windows"
    )


def summary_text(report: dict) -> str:
    """The comparison table as aligned plain text."""
    rows = [_HEADER, *_table_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    lines = [_caption(report)]
    if report["truth"] != "lab":
        lines.append(f"truth: {report['truth'].upper()} (not patient data)")
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def summary_markdown(report: dict) -> str:
    """The comparison table as markdown, with the caption and the reference figures' source."""
    lines = [
        "# Gait features vs truth (`cpgait agreement`)",
        "",
        _caption(report) + ".",
        "",
        f"Truth: **{report['truth']}**"
        + (
            " — SYNTHETIC data, not patients: these figures check the feature code against a 2-D kinematic model "
            "it was built around, an upper bound; video against a 3-D gait lab will agree less."
            if report["truth"] != "lab"
            else "."
        ),
        "",
        "| " + " | ".join(_HEADER) + " |",
        "|" + "---|" * len(_HEADER),
        *("| " + " | ".join(r) + " |" for r in _table_rows(report)),
        "",
        "r = Pearson correlation over recordings (95 % interval by Fisher z); MAE and bias (feature − truth) only "
        "where feature and truth share a unit. Paper r: Kidziński et al. (2020), test set, models fitted to the lab "
        "values (stanfordnmbl/mobile-gaitlab, training/figures/fig_data/SuppFig3.csv); cpgait's features are "
        "measured without fitting.",
        "",
    ]
    return "\n".join(lines)


def plot_agreement(report: dict, path: Path) -> None:
    """One scatter panel per comparison: feature against truth, the identity line where units agree."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = report["comparisons"]
    cols = min(4, len(comps))
    rows = math.ceil(len(comps) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False, constrained_layout=True)
    for ax, c in zip(axes.flat, comps):
        x, y = np.asarray(c["values"]["truth"]), np.asarray(c["values"]["feature"])
        ax.scatter(x, y, s=8, alpha=0.6)
        if c["unit"] is not None:
            lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
            ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8)
        ax.set_title(f"{c['name']}: r {_fmt(c['r'])}, n {c['n']}", fontsize=9)
        ax.set_xlabel(f"truth {' / '.join(c['truth'])}", fontsize=8)
        ax.set_ylabel(f"cpgait {c['features'][0].removesuffix('_left')} ({c['feature_unit']})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(comps) :]:
        ax.axis("off")
    fig.suptitle(f"gait features vs {report['truth']} truth" + (" (SYNTHETIC)" if report["truth"] != "lab" else ""))
    fig.savefig(path, dpi=110)
    plt.close(fig)
