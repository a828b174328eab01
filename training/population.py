"""The synthetic population against the real one: pooled gait measures of `cpgait synth` children under the gait-lab
level mix (`gait_levels.LEVEL_MIX`) next to the real figures of `real_gait.py`, as a table, a correlation matrix and a
plot (`cpgait synth OUT --report`). SYNTHETIC data; the real figures are summary statistics from the cited source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, refuse_overwrite
from cpgait.runtime.core.sequence import GMFCS_LEVELS
from cpgait.training.gait_levels import LEVEL_MIX
from cpgait.training.real_gait import CORRELATIONS, HYPEREXTENSION_SHARE, PATIENTS, REAL, SOURCE
from cpgait.training.synth import synthesize

MEASURES = tuple(REAL)
# Why a synthetic figure may stay off the real one (printed under the table).
KNOWN_DIFFERENCES = (
    "The level mix of the real data is not published; the synthetic pool assumes "
    + ", ".join(f"{GMFCS_LEVELS[i]} {m:.0%}" for i, m in enumerate(LEVEL_MIX))
    + ". A different real mix shifts every pooled figure.",
    "Real extremes (speed 0.20 m/s, cadence 54 or 181 steps/min, knee 59 deg) come from a few children; the "
    "generator clips its parameters to plausible ranges, so its tails are thinner.",
    "Hip rotation and foot progression are drawn independently of everything else; in real children they go with "
    "the type of CP, which the generator does not model. The Gait Deviation Index is not modelled at all.",
)


@dataclass(frozen=True)
class Population:
    """Per-walk measures of a synthetic population (one walk per child): name -> values, and the children's levels."""

    values: dict[str, np.ndarray]
    levels: np.ndarray

    def correlation(self, a: str, b: str) -> float:
        return float(np.corrcoef(self.values[a], self.values[b])[0, 1])

    @property
    def hyperextension_share(self) -> float:
        return float(np.mean(self.values["knee_max_extension"] < 0))


def level_counts(n: int) -> list[int]:
    """How many of `n` children each level gets under `LEVEL_MIX` (largest remainders; they sum to n)."""
    exact = np.array(LEVEL_MIX) * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: n - counts.sum()]] += 1
    return counts.tolist()


def draw_population(n: int, seed: int) -> Population:
    """`n` synthetic children under `LEVEL_MIX`, one clean 8 s walk each, measured from the generator's truth: speed,
    cadence, stride length, knee flexion at maximum extension (least in stance), hip rotation and foot progression
    (means of both legs)."""
    if n < 10:
        raise CpgaitError(f"--n is {n}; a population report needs at least 10 children")
    rows, levels = [], []
    for level, count in enumerate(level_counts(n)):
        for i in range(count):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(level, i)))
            truth = synthesize(level, rng, clean=True, duration_s=8.0)[1]
            rows.append(
                [
                    truth["speed_m_per_s"],
                    truth["cadence_steps_per_min"],
                    truth["stride_length_m"],
                    np.mean(list(truth["knee_flexion_stance_min_deg"].values())),
                    np.mean(list(truth["hip_rotation_deg"].values())),
                    np.mean(list(truth["foot_progression_deg"].values())),
                ]
            )
            levels.append(level)
    table = np.array(rows, dtype=np.float64)
    return Population(dict(zip(MEASURES, table.T)), np.array(levels))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def report_markdown(pop: Population, seed: int) -> str:
    """The comparison as markdown: per measure real vs synthetic (mean, sd, p5, p50, p95), the hyperextension share,
    the correlations and the known differences."""
    lines = [
        f"Synthetic (`cpgait synth`, seed {seed}, {len(pop.levels)} children, one clean walk each, level mix "
        + ", ".join(f"{GMFCS_LEVELS[i]} {m:.0%}" for i, m in enumerate(LEVEL_MIX))
        + f") vs real (n = {PATIENTS}; {SOURCE}).",
        "",
        "| measure | | mean | sd | p5 | p50 | p95 | min | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in MEASURES:
        real, syn = REAL[name], pop.values[name]
        lines.append(
            f"| {name}, {real.unit} | real | "
            + " | ".join(_fmt(v) for v in (real.mean, real.sd, real.p5, real.p50, real.p95, real.low, real.high))
            + " |"
        )
        p5, p50, p95 = np.percentile(syn, [5, 50, 95])
        lines.append(
            "| | synthetic | "
            + " | ".join(_fmt(float(v)) for v in (syn.mean(), syn.std(ddof=1), p5, p50, p95, syn.min(), syn.max()))
            + " |"
        )
    lines += [
        "",
        f"Knee hyperextension in stance (< 0 deg): real {HYPEREXTENSION_SHARE:.0%}, "
        f"synthetic {pop.hyperextension_share:.0%}.",
        "",
        "| correlation (Pearson) | real | synthetic |",
        "|---|---|---|",
    ]
    for (a, b), r in CORRELATIONS.items():
        lines.append(f"| {a} - {b} | {r:+.2f} | {pop.correlation(a, b):+.2f} |")
    lines += ["", "Known differences:", ""] + [f"- {d}" for d in KNOWN_DIFFERENCES]
    return "\n".join(lines) + "\n"


def plot_report(pop: Population, path: Path) -> None:
    """Histograms of the synthetic measures with the real p5 / p50 / p95 marked, and the two correlation matrices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, name in zip(axes.ravel(), MEASURES):
        real = REAL[name]
        ax.hist(pop.values[name], bins=30, color="#8fb3d9", label="synthetic")
        for q, style in ((real.p5, ":"), (real.p50, "-"), (real.p95, ":")):
            ax.axvline(q, color="#c0392b", linestyle=style)
        ax.set_title(f"{name} ({real.unit})")
    axes[0, 0].legend(["real p5/p50/p95", "", "", "synthetic"], fontsize=8)
    names = ("speed", "cadence", "knee_max_extension")
    for ax, title, get in (
        (axes[1, 2], f"real (n = {PATIENTS})", lambda a, b: CORRELATIONS.get((a, b), CORRELATIONS.get((b, a)))),
        (axes[1, 3], f"synthetic (n = {len(pop.levels)})", pop.correlation),
    ):
        m = np.array([[1.0 if a == b else get(a, b) for b in names] for a in names])
        ax.imshow(m, vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_xticks(range(3), ["speed", "cadence", "knee ext."])
        ax.set_yticks(range(3), ["speed", "cadence", "knee ext."])
        for i in range(3):
            for j in range(3):
                ax.text(j, i, f"{m[i, j]:+.2f}", ha="center", va="center")
        ax.set_title(f"correlations, {title}")
    fig.suptitle("SYNTHETIC population vs real children with CP (lab measurements)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(out: Path, n: int, seed: int, overwrite: bool = False) -> tuple[str, list[Path]]:
    """Draw the population, write `population.md` and `population.png` into `out`; return the markdown and paths."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CpgaitError(f"{out}: exists and is not a directory; expected an output directory")
    paths = [out / "population.md", out / "population.png"]
    for path in paths:
        refuse_overwrite(path, overwrite)
    pop = draw_population(n, seed)
    text = report_markdown(pop, seed)
    out.mkdir(parents=True, exist_ok=True)
    paths[0].write_text(text)
    plot_report(pop, paths[1])
    return text, paths
