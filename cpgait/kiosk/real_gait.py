"""Gait of real children with cerebral palsy, shown beside a session's numbers for orientation only.

Copied from the project's notes on real gait (REAL-GAIT.md), which computed them from the figure data published
with Kidzinski et al. (2020) (repository stanfordnmbl/mobile-gaitlab, Apache-2.0; see NOTICE). They are
lab-measured (3-D motion capture) values of the n = 190 test-set children with CP of the Gillette Children's gait
lab, mostly GMFCS I-III; the level mix is not published with these figures. The kiosk measures 2-D angles and
lengths in leg lengths from one camera, so only cadence shares the unit; the others are orientation, not norms.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = (
    "Kidzinski L. et al., Deep neural networks enable quantitative movement analysis using single-camera videos, "
    "Nature Communications 11, 4054 (2020): lab-measured values of n = 190 children with CP (Gillette Children's "
    "gait lab), from the figure data in stanfordnmbl/mobile-gaitlab (Apache-2.0)"
)


@dataclass(frozen=True)
class RealRange:
    """One quantity's spread in the real children (p5, median, p95) and how it relates to the kiosk's measure."""

    quantity: str
    unit: str
    p5: float
    p50: float
    p95: float
    comparable: str

    def __post_init__(self) -> None:
        if not self.p5 <= self.p50 <= self.p95:
            raise ValueError(f"{self.quantity}: p5 {self.p5} <= median {self.p50} <= p95 {self.p95} expected")

    def describe(self) -> str:
        return f"{self.p5:g} - {self.p95:g} {self.unit} (median {self.p50:g})"


_KNEE = RealRange(
    "knee flexion at max extension",
    "deg",
    -6.2,
    9.1,
    32.7,
    "same quantity, but 3-D in the lab and 2-D from the side here",
)
REAL_RANGES: dict[str, RealRange] = {
    "cadence": RealRange("cadence", "steps/min", 82.0, 121.6, 159.1, "same quantity and unit"),
    "speed": RealRange(
        "walking speed", "m/s", 0.56, 0.98, 1.31, "in m/s; the kiosk measures leg lengths/s (no metric scale)"
    ),
    "step_length": RealRange(
        "stride length (two steps)", "m", 0.65, 0.94, 1.24, "a stride in m; the kiosk measures one step in leg lengths"
    ),
    "knee_peak_extension_left": _KNEE,
    "knee_peak_extension_right": _KNEE,
}
