"""A stored session as the result page, the report and the history show it: the estimate over its windows, the gait
features with their spread, the per-window timeline, and quality indicators.

The estimate follows the live loop (`GaitSession.estimate`): the mean of the windows' probabilities, its arg-max,
agreement = share of windows voting for that class, confidence = its mean probability x agreement. Only the windows
of the session's main walker (the tracked subject with the most windows) count; other walkers' are listed apart.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass

import numpy as np

from cpgait.kiosk.real_gait import REAL_RANGES, RealRange
from cpgait.kiosk.store import SessionRecord, WindowRecord
from cpgait.runtime.gait.features import SCALAR_NAMES, SPECS
from cpgait.runtime.live.gait_session import ESTIMATE, SessionEstimate

TREND_FEATURES = ("speed", "cadence", "knee_rom_left", "knee_rom_right", "knee_peak_extension_left")


@dataclass(frozen=True)
class FeatureRow:
    """One gait feature over a session's windows: median and range, with the real children's range if known."""

    name: str
    unit: str
    description: str
    median: float | None
    low: float | None
    high: float | None
    windows: int
    real: RealRange | None

    def text(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.0f}" if self.unit in ("deg", "steps/min", "%") else f"{value:.2f}"


@dataclass(frozen=True)
class SessionResult:
    session: SessionRecord
    windows: list[WindowRecord]  # the main walker's
    other_windows: int
    estimate: SessionEstimate | None
    features: list[FeatureRow]
    synthetic: bool

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.session.contract.get("class_names", ()))

    def feature(self, name: str) -> float | None:
        return next((f.median for f in self.features if f.name == name), None)


def estimate_of(windows: list[WindowRecord], class_names: tuple[str, ...]) -> SessionEstimate | None:
    """The session estimate over `windows` (None without windows)."""
    if not windows:
        return None
    probs = np.array([[w.probabilities[c] for c in class_names] for w in windows], dtype=np.float64)
    mean = probs.mean(axis=0)
    top = int(np.argmax(mean))
    agreement = float(np.mean(np.argmax(probs, axis=1) == top))
    return SessionEstimate(ESTIMATE, len(windows), 0, 0, class_names, tuple(float(p) for p in mean), agreement)


def feature_rows(windows: list[WindowRecord]) -> list[FeatureRow]:
    """Median and min-max of every per-window gait feature over the windows where it was defined."""
    rows = []
    for name in SCALAR_NAMES:
        values = [w.features.get(name) for w in windows]
        finite = [float(v) for v in values if v is not None and math.isfinite(v)]
        spec = SPECS[name]
        rows.append(
            FeatureRow(
                name=name,
                unit=spec.unit,
                description=spec.description,
                median=statistics.median(finite) if finite else None,
                low=min(finite) if finite else None,
                high=max(finite) if finite else None,
                windows=len(finite),
                real=REAL_RANGES.get(name),
            )
        )
    return rows


def session_result(session: SessionRecord, windows: list[WindowRecord]) -> SessionResult:
    counts = Counter(w.subject for w in windows)
    main = counts.most_common(1)[0][0] if counts else None
    mine = [w for w in windows if w.subject == main]
    names = tuple(session.contract.get("class_names", ()))
    return SessionResult(
        session=session,
        windows=mine,
        other_windows=len(windows) - len(mine),
        estimate=estimate_of(mine, names),
        features=feature_rows(mine),
        synthetic=bool(session.contract.get("synthetic", True)),
    )


def quality_rows(result: SessionResult) -> list[tuple[str, str]]:
    """Quality indicators as (label, text): frames tracked, occluded, walkers, direction changes, windows."""
    q = result.session.quality
    frames = q.get("frames", 0)

    def share(n: int) -> str:
        return f"{n} of {frames} ({n / frames:.0%})" if frames else "-"

    valid = [w.valid_fraction for w in result.windows]
    return [
        ("frames tracked", share(q.get("tracked", 0))),
        ("frames with the subject occluded", share(q.get("occluded", 0))),
        ("walking direction changes", str(q.get("direction_changes", 0))),
        ("walkers seen", str(q.get("walkers", 0))),
        ("windows classified", str(len(result.windows))),
        ("windows of other walkers (not counted)", str(result.other_windows)),
        ("valid frames per window (mean)", f"{statistics.mean(valid):.0%}" if valid else "-"),
    ]
