"""`--compare BASELINE.json`: ratios between this run and an earlier one, with regressions flagged.

Latencies are compared at the median (p50: the figure least moved by a noisy machine) and at p95; for a pipeline the
end-to-end frames/s as well. A ratio is current / baseline for times and baseline / current for rates, so > 1 is
always "slower"; a regression is a ratio above 1 + threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from cpgait.errors import CpgaitError


@dataclass(frozen=True)
class Comparison:
    """One figure in both runs; `slowdown` > 1 means the current run is slower."""

    item: str
    metric: str
    baseline: float
    current: float
    slowdown: float
    regression: bool

    def __post_init__(self) -> None:
        if self.baseline <= 0 or self.current <= 0:
            raise ValueError(f"{self.item} {self.metric}: figures must be positive ({self.baseline}, {self.current})")


def parse_threshold(text: str) -> float:
    """`10%` or `0.1` -> 0.1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise CpgaitError(
            f"--regression {text!r}: expected a percentage such as 10% or a fraction such as 0.1"
        ) from None
    if not 0 <= value < 10:
        raise CpgaitError(f"--regression {text!r}: expected a threshold between 0% and 1000%")
    return value


def _figures(report: dict) -> dict[tuple[str, str], tuple[float, bool]]:
    """(item, metric) -> (value, higher_is_better) for every measured figure of a report."""
    out: dict[tuple[str, str], tuple[float, bool]] = {}
    if report["kind"] == "model":
        for r in report["results"]:
            if r["status"] == "ok":
                item = f"{r['backend']} batch {r['batch']}" + (f" threads {r['threads']}" if r["threads"] else "")
                out[(item, "p50 ms")] = (r["latency"]["p50_ms"], False)
                out[(item, "p95 ms")] = (r["latency"]["p95_ms"], False)
        return out
    for s in report["stages"]:
        out[(s["stage"], "p50 ms")] = (s["latency"]["p50_ms"], False)
    out[("end-to-end", "p50 ms")] = (report["end_to_end"]["latency"]["p50_ms"], False)
    out[("end-to-end", "p95 ms")] = (report["end_to_end"]["latency"]["p95_ms"], False)
    out[("end-to-end", "frames/s")] = (report["end_to_end"]["fps"], True)
    return out


def compare(current: dict, baseline: dict, threshold: float) -> list[Comparison]:
    """Every figure present in both reports, in the current report's order."""
    if current["kind"] != baseline["kind"]:
        raise CpgaitError(f"cannot compare a {current['kind']} run with a {baseline['kind']} baseline")
    base = _figures(baseline)
    out = []
    for key, (value, higher_is_better) in _figures(current).items():
        if key not in base or value <= 0 or base[key][0] <= 0:
            continue
        old = base[key][0]
        slowdown = old / value if higher_is_better else value / old
        out.append(Comparison(key[0], key[1], old, value, round(slowdown, 3), slowdown > 1 + threshold))
    return out


def print_comparison(rows: list[Comparison], threshold: float, console: Console | None = None) -> None:
    console = console or Console()
    if not rows:
        console.print("[yellow]nothing to compare: the two runs share no measured backend, batch or stage[/yellow]")
        return
    table = Table(title=f"compared with the baseline (regression: more than {100 * threshold:.0f} % slower)")
    for column in ("item", "metric", "baseline", "current", "current / baseline", ""):
        table.add_column(column, justify="left" if column in ("item", "metric", "") else "right")
    for c in rows:
        table.add_row(
            c.item,
            c.metric,
            f"{c.baseline:.3f}",
            f"{c.current:.3f}",
            f"{c.slowdown:.2f}× slower" if c.slowdown >= 1 else f"{1 / c.slowdown:.2f}× faster",
            "[bold red]REGRESSION[/bold red]" if c.regression else "",
        )
    console.print(table)
