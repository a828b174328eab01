"""Summary statistics of the real gait of children with cerebral palsy, to calibrate and check `cpgait synth` against.

Source: Kidzinski L., Yang B., Hicks J., Rajagopal A., Delp S., Schwartz M. "Deep neural networks enable quantitative
movement analysis using single-camera videos", Nature Communications 11, 4054 (2020); Gillette Children's Specialty
Healthcare gait lab. The figures are computed from the figure data published with the paper's code (repository
stanfordnmbl/mobile-gaitlab, Apache-2.0, files training/figures/fig_data/Fig2a-d.csv and SuppFig2.csv): lab-measured
(3-D motion capture) values of the n = 190 test-set patients, mostly GMFCS I-III (the level mix is not published with
these figures). Cadence: the stored strides/s x 120 = steps/min; stride length = speed / (strides/s). Knee flexion at
maximum extension = the least knee flexion in stance (negative = hyperextension). Rotations: internal positive.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = (
    "Kidzinski et al., Nature Communications 11, 4054 (2020); lab-measured values of the n = 190 test-set patients "
    "(stanfordnmbl/mobile-gaitlab figure data, Apache-2.0)"
)
PATIENTS = 190


@dataclass(frozen=True)
class RealStat:
    """Distribution of one measure in the real data (None where the source gives no figure)."""

    name: str
    unit: str
    mean: float
    sd: float
    p5: float
    p25: float | None
    p50: float
    p75: float | None
    p95: float
    low: float | None  # minimum
    high: float | None  # maximum


REAL: dict[str, RealStat] = {
    s.name: s
    for s in (
        RealStat("speed", "m/s", 0.96, 0.24, 0.56, 0.84, 0.98, 1.11, 1.31, 0.20, 1.53),
        RealStat("cadence", "steps/min", 121.6, 22.2, 82.0, 111.4, 121.6, 131.9, 159.1, 53.7, 180.7),
        RealStat("stride_length", "m", 0.95, 0.18, 0.65, 0.82, 0.94, 1.07, 1.24, 0.44, 1.46),
        RealStat("knee_max_extension", "deg", 10.4, 12.0, -6.2, 3.2, 9.1, 17.2, 32.7, -16.9, 59.1),
        RealStat("hip_rotation", "deg", 1.0, 10.9, -15.4, None, 0.3, None, 19.3, None, None),
        RealStat("foot_progression", "deg", -6.8, 15.7, -36.0, None, -5.1, None, 17.5, None, None),
    )
}
HYPEREXTENSION_SHARE = 0.17  # knee flexion at maximum extension < 0 deg
# Pearson correlations between speed, cadence and knee flexion at maximum extension (n = 190). The source also gives
# the Gait Deviation Index, which the synthetic generator does not model.
CORRELATIONS: dict[tuple[str, str], float] = {
    ("speed", "cadence"): 0.64,
    ("speed", "knee_max_extension"): -0.15,
    ("cadence", "knee_max_extension"): -0.05,
}
