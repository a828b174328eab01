"""One walking session: keypoints at the model's fps in, per-window severity results and a session estimate out.

The model contract decides everything the model needs: the layout of the keypoints, the window length T, the fps
and the gait features. The last T frames live in a ring buffer; the gait features are updated with every frame
(`IncrementalFeatures`); every `stride` frames, once the window is full and enough of it shows the child's legs,
the classifier runs on the window. Until the first window there is no estimate ("not enough walking yet").

A model that cannot run here (a feature this runtime does not compute, inputs or window that differ from the graph,
a class count that differs from its logits) is refused when the session is built, naming the model and the field.
A window that cannot be classified is counted by cause (`WINDOW_FAILURES`): only `no_leg_seen` means the child's
legs were not visible; any other cause turns the state into "windows failing" instead of "not enough walking yet".

Session estimate: the mean of the windows' class probabilities; its class is the arg-max; its confidence is the
mean probability of that class times the agreement (the share of windows whose own class is that class), so a
session whose windows disagree is reported as uncertain even when each window was sure.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.gait.feature_bank import BANK_SCALARS, BANK_SERIES
from cpgait.runtime.gait.features import MASK_SUFFIX, SCALAR_NAMES, SERIES_NAMES, IncrementalFeatures
from cpgait.runtime.gait.keypoints import NoLegSeen, seen

NOT_ENOUGH = "not enough walking yet"
ESTIMATE = "estimate"
FAILING = "windows failing"
NO_LEG_SEEN = "no_leg_seen"  # no frame of the window shows a whole leg: the one failure that is "not walking"
FEATURES_FAILED = "features_failed"  # the gait features raised another error (a defect: reported, never hidden)
CLASSIFIER_INVALID = "classifier_invalid"  # the classifier returned non-finite logits
WINDOW_FAILURES = (NO_LEG_SEEN, FEATURES_FAILED, CLASSIFIER_INVALID)
MIN_VALID_FRACTION = 0.8  # of a window's frames that must be valid for it to be classified
MIN_JOINTS_SEEN = 0.8  # of the feature joints a frame must show to be valid
RECENT_WINDOWS = 1000  # window results kept for display; the aggregate covers them all


@dataclass(frozen=True)
class WindowResult:
    """The classifier's answer for one window (time = the model-clock time of the window's last frame)."""

    time_s: float
    frame: int
    probabilities: tuple[float, ...]
    class_names: tuple[str, ...]
    valid_fraction: float
    features: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = np.asarray(self.probabilities)
        if p.ndim != 1 or len(p) != len(self.class_names) or not np.all(np.isfinite(p)) or abs(p.sum() - 1) > 1e-3:
            raise ValueError(
                f"window probabilities {self.probabilities} are not a distribution over {len(self.class_names)} classes"
            )

    @property
    def class_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def class_name(self) -> str:
        return self.class_names[self.class_index]

    @property
    def confidence(self) -> float:
        return float(max(self.probabilities))

    def to_json(self) -> dict:
        """One JSON line of `--events`."""
        return {
            "type": "window",
            "time_s": round(self.time_s, 4),
            "frame": self.frame,
            "probabilities": dict(zip(self.class_names, (round(float(p), 5) for p in self.probabilities))),
            "class": self.class_name,
            "confidence": round(self.confidence, 5),
            "valid_fraction": round(self.valid_fraction, 4),
            "features": self.features,
        }


@dataclass(frozen=True)
class SessionEstimate:
    """Where the session stands: `state` is NOT_ENOUGH until a window was classified, then ESTIMATE.

    valid_frames: how many of the last `frames_needed` (= T) model frames show the feature joints.
    """

    state: str
    windows: int
    valid_frames: int
    frames_needed: int
    class_names: tuple[str, ...]
    probabilities: tuple[float, ...] | None = None
    agreement: float | None = None
    failures: tuple[tuple[str, int], ...] = ()  # windows not classified, by cause (`WINDOW_FAILURES`)

    def __post_init__(self) -> None:
        states = (NOT_ENOUGH, ESTIMATE, FAILING)
        if self.state not in states or (self.state == ESTIMATE) != (self.probabilities is not None):
            raise ValueError(
                f"session state {self.state!r} with probabilities {self.probabilities}: an estimate has "
                f"probabilities, {NOT_ENOUGH!r} and {FAILING!r} have none"
            )
        unknown = [c for c, _ in self.failures if c not in WINDOW_FAILURES]
        if unknown:
            raise ValueError(f"window failure cause(s) {unknown}; expected {WINDOW_FAILURES}")
        if self.agreement is not None and not 0 <= self.agreement <= 1:
            raise ValueError(f"agreement {self.agreement}; expected a share in [0, 1]")

    @property
    def class_name(self) -> str | None:
        return None if self.probabilities is None else self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float | None:
        if self.probabilities is None or self.agreement is None:
            return None
        return float(max(self.probabilities)) * self.agreement

    def to_json(self) -> dict:
        return {
            "type": "session",
            "state": self.state,
            "windows": self.windows,
            "valid_frames": self.valid_frames,
            "frames_needed": self.frames_needed,
            "probabilities": None
            if self.probabilities is None
            else dict(zip(self.class_names, (round(float(p), 5) for p in self.probabilities))),
            "class": self.class_name,
            "confidence": None if self.confidence is None else round(self.confidence, 5),
            "agreement": None if self.agreement is None else round(self.agreement, 4),
            "window_failures": dict(self.failures),
        }


def _shown(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max()
    e = np.exp(z)
    return e / e.sum()


class GaitSession:
    """Ring buffer + incremental features + classifier every `stride` frames + aggregation (module docstring)."""

    def __init__(
        self,
        contract: ModelContract,
        runner: Runner,
        stride: int | None = None,
        min_valid_fraction: float = MIN_VALID_FRACTION,
        where: str = "model",
    ) -> None:
        self.contract = contract
        self.where = where
        self.runner = runner
        self.stride = int(stride) if stride is not None else contract.default_stride
        if not 1 <= self.stride:
            raise CpgaitError(f"classification stride {stride}; expected >= 1 frame")
        if not 0 < min_valid_fraction <= 1:
            raise CpgaitError(f"minimum valid fraction {min_valid_fraction}; expected in (0, 1]")
        self.min_valid_fraction = float(min_valid_fraction)
        layout = get_layout(contract.layout)
        self._frame_shape = (layout.num_joints, 3)
        names = contract.feature_joints or layout.joints
        self._joints = [layout.index(j) for j in names if j in layout.joints]
        self.failures_total: dict[str, int] = dict.fromkeys(WINDOW_FAILURES, 0)  # over all sessions of the run
        self.last_failure: str | None = None  # the last failure's message
        self._check_fits()
        self.reset()

    def _check_fits(self) -> None:
        """Refuse, before the first frame, a model this runtime cannot feed or read (module docstring)."""
        c, where = self.contract, self.where
        for kind, names, known in (
            ("series_features", c.series_features, SERIES_NAMES + BANK_SERIES),
            ("scalar_features", c.scalar_features, SCALAR_NAMES + BANK_SCALARS),
        ):
            unknown = [n for n in names if n.removesuffix(MASK_SUFFIX) not in known]
            if unknown:
                raise CpgaitError(
                    f"{where}: contract field {kind} names {', '.join(map(repr, unknown))}, which this runtime "
                    f"does not compute; expected one of its {len(known)} clinical or per-joint {kind.split('_')[0]} "
                    f"names (cpgait.runtime.gait.features, feature_bank), each optionally with {MASK_SUFFIX!r}"
                )
        layout = get_layout(c.layout)
        unknown = [j for j in c.feature_joints if j not in layout.joints]
        if unknown:
            raise CpgaitError(f"{where}: contract field feature_joints names {unknown}, not joints of {c.layout}")
        graph = {s.name: s for s in self.runner.input_specs()}
        if set(graph) != set(c.input_names):
            raise CpgaitError(
                f"{where}: the graph's inputs {sorted(graph)} do not match contract field streams "
                f"{c.streams!r} (inputs {sorted(c.input_names)})"
            )
        implied_by = {
            "skeleton": "window",
            "gait_series": "window / series_features",
            "gait_scalars": "scalar_features",
        }
        for want in c.input_specs():
            got = graph[want.name].shape
            fixed = zip(got, want.shape)
            if len(got) != len(want.shape) or any(g is not None and w is not None and g != w for g, w in fixed):
                raise CpgaitError(
                    f"{where}: the graph's input {want.name!r} has shape {_shown(got)} but contract field "
                    f"{implied_by[want.name]} implies {_shown(want.shape)}"
                )
        if c.output_name not in self.runner.output_names():
            raise CpgaitError(
                f"{where}: contract field output_name is {c.output_name!r}; the graph's outputs are "
                f"{self.runner.output_names()}"
            )
        feed = {s.name: np.zeros((1, *(int(d or 0) for d in s.shape[1:])), dtype=np.float32) for s in c.input_specs()}
        logits = np.asarray(self.runner.infer(feed)[c.output_name])
        if logits.size != len(c.class_names):
            raise CpgaitError(
                f"{where}: the classifier returns {logits.size} logits per window but contract field class_names "
                f"lists {len(c.class_names)} classes"
            )

    def reset(self) -> None:
        """Start a new session (a new subject)."""
        self._ring = np.zeros((self.contract.window, *self._frame_shape), dtype=np.float32)  # the last T frames
        self._valid = np.zeros(self.contract.window, dtype=bool)  # which of them count
        self._count = 0
        self._since = 0
        self.windows: deque[WindowResult] = deque(maxlen=RECENT_WINDOWS)
        self._sum = np.zeros(len(self.contract.class_names))
        self._votes = np.zeros(len(self.contract.class_names), dtype=np.int64)
        self.failures: dict[str, int] = dict.fromkeys(WINDOW_FAILURES, 0)  # this session's
        self.last_timings_ns: dict[str, int] = {}
        self.features = IncrementalFeatures(self.contract.layout, self.contract.fps, self.contract.window)

    def is_valid(self, keypoints: np.ndarray) -> bool:
        """A frame counts towards a window when most of the feature joints are seen."""
        kp = keypoints[self._joints]
        return bool(seen(kp).mean() >= MIN_JOINTS_SEEN)

    def push(self, time_s: float, keypoints: np.ndarray) -> WindowResult | None:
        """Add one frame (`[V, 3]` in the contract's layout, at the contract's fps); a window result when one ran."""
        kp = np.asarray(keypoints, dtype=np.float32)
        if kp.shape != self._frame_shape:
            raise CpgaitError(
                f"session frame has shape {kp.shape}; the model's layout {self.contract.layout} "
                f"needs {self._frame_shape}"
            )
        slot = self._count % self.contract.window
        self._ring[slot] = kp
        self._valid[slot] = self.is_valid(kp)
        self._count += 1
        self._since += 1
        t0 = time.perf_counter_ns()
        self.features.push(kp)
        self.last_timings_ns = {"features": time.perf_counter_ns() - t0, "classifier": 0, "classifier_cpu": 0}
        if self._count < self.contract.window or self._since < self.stride:
            return None
        fraction = float(self._valid.mean())
        if fraction < self.min_valid_fraction:
            return None
        self._since = 0
        return self._classify(time_s, fraction)

    def _classify(self, time_s: float, fraction: float) -> WindowResult | None:
        t0 = time.perf_counter_ns()
        try:
            inputs = self.features.inputs(self.contract.series_features, self.contract.scalar_features)
            feats = self.features.features()
        except NoLegSeen as exc:
            self._failed(NO_LEG_SEEN, str(exc))
            return None
        except CpgaitError as exc:
            self._failed(FEATURES_FAILED, str(exc))
            return None
        finally:
            self.last_timings_ns["features"] += time.perf_counter_ns() - t0
        feed = {name: inputs[name][None] for name in self.contract.input_names}
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        outputs = self.runner.infer(feed)
        self.last_timings_ns["classifier"] = time.perf_counter_ns() - t0
        self.last_timings_ns["classifier_cpu"] = time.thread_time_ns() - c0
        logits = np.asarray(outputs[self.contract.output_name], dtype=np.float64).reshape(-1)
        if logits.shape != (len(self.contract.class_names),):
            raise CpgaitError(
                f"{self.where}: classifier returned {logits.shape} logits; contract field class_names lists "
                f"{len(self.contract.class_names)} classes"
            )
        if not np.all(np.isfinite(logits)):
            self._failed(CLASSIFIER_INVALID, f"classifier returned non-finite logits {logits.tolist()}")
            return None
        probs = _softmax(logits)
        scalars = {
            n: (None if not math.isfinite(v) else round(float(v), 4)) for n, v in zip(feats.scalar_names, feats.scalars)
        }
        result = WindowResult(
            time_s, self._count, tuple(float(p) for p in probs), self.contract.class_names, fraction, scalars
        )
        self.windows.append(result)
        self._sum += probs
        self._votes[result.class_index] += 1
        return result

    def _failed(self, cause: str, message: str) -> None:
        """Count a window that could not be classified (no result for it)."""
        self.failures[cause] += 1
        self.failures_total[cause] += 1
        self.last_failure = f"{cause}: {message}"

    def window_keypoints(self) -> np.ndarray:
        """The raw keypoints `[T, V, 3]` of the last T frames, oldest first (e.g. for a calibration recorder)."""
        if self._count < self.contract.window:
            raise RuntimeError(f"{self._count} frame(s) so far; a window needs {self.contract.window}")
        return np.roll(self._ring, -(self._count % self.contract.window), axis=0)

    @property
    def window_count(self) -> int:
        return int(self._votes.sum())

    def estimate(self) -> SessionEstimate:
        """The session so far: NOT_ENOUGH until one window was classified, then the aggregate."""
        names = self.contract.class_names
        n = self.window_count
        valid = int(self._valid.sum())
        needed = self.contract.window
        failures = tuple((c, k) for c, k in self.failures.items() if k)
        if n == 0:
            broken = any(c != NO_LEG_SEEN for c, _ in failures)
            return SessionEstimate(FAILING if broken else NOT_ENOUGH, 0, valid, needed, names, failures=failures)
        probs = self._sum / n
        agreement = float(self._votes[int(np.argmax(probs))] / n)
        return SessionEstimate(
            ESTIMATE, n, valid, needed, names, tuple(float(p) for p in probs), agreement, failures=failures
        )
