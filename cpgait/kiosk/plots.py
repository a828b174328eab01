"""The kiosk's plots, drawn on the server with matplotlib (no JavaScript, no internet): a session's per-window
timeline and a patient's trends across sessions; SVG for the pages, PNG for the PDF report."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from cpgait.kiosk.results import TREND_FEATURES, SessionResult
from cpgait.runtime.gait.features import SPECS


def _render(fig: Figure, fmt: str) -> bytes:
    if fmt not in ("svg", "png"):
        raise ValueError(f"plot format {fmt!r}; expected svg or png")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def timeline(result: SessionResult, fmt: str = "svg") -> bytes:
    """Each class's probability per window over the session's time, with the windows' valid share below."""
    fig = Figure(figsize=(7.5, 3.4))
    ax, ax_valid = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    t = [w.time_s for w in result.windows]
    for name in result.class_names:
        ax.plot(t, [w.probabilities[name] for w in result.windows], marker="o", ms=3, label=name)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", fontsize=7, ncols=len(result.class_names))
    ax.grid(alpha=0.3)
    if not t:
        ax.text(0.5, 0.5, "no window classified", ha="center", va="center", transform=ax.transAxes)
    ax_valid.bar(t, [w.valid_fraction for w in result.windows], width=0.2, color="grey")
    ax_valid.set_ylim(0, 1)
    ax_valid.set_ylabel("valid", fontsize=8)
    ax_valid.set_xlabel("time in the session (s, model clock)")
    return _render(fig, fmt)


def trends(results: list[SessionResult], fmt: str = "svg") -> bytes:
    """Speed, cadence and knee measures (each session's median over its windows) against the session date."""
    fig = Figure(figsize=(7.5, 1.7 * len(TREND_FEATURES)))
    axes = fig.subplots(len(TREND_FEATURES), 1, sharex=True)
    dates = [datetime.strptime(r.session.started_at, "%Y-%m-%dT%H:%M:%SZ") for r in results]
    for ax, name in zip(axes, TREND_FEATURES):
        points = [(d, r.feature(name)) for d, r in zip(dates, results) if r.feature(name) is not None]
        ax.plot([d for d, _ in points], [v for _, v in points], marker="o")
        ax.set_ylabel(f"{name.replace('_', ' ')}\n({SPECS[name].unit})", fontsize=8)
        ax.grid(alpha=0.3)
        if not points:
            ax.text(0.5, 0.5, "no measurement", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    if dates:  # at least two weeks wide, so that one session or one day's sessions sit in a readable axis
        middle = min(dates) + (max(dates) - min(dates)) / 2
        half = max((max(dates) - min(dates)) / 2 + timedelta(days=1), timedelta(days=7))
        axes[-1].set_xlim(middle - half, middle + half)
    locator = mdates.AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes[-1].set_xlabel("session date (UTC)")
    return _render(fig, fmt)
