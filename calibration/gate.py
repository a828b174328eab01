"""Accuracy gate: does model B (INT8 ONNX, engine, ...) make the same decisions as model A (checkpoint, FP32 ONNX)?

Both run on the same windows; the gate reports top-1 agreement, accuracy / macro-F1 / weighted kappa of each and
their difference, per-class F1 deltas and max / mean |delta logits|, and fails when agreement falls below
`min_agreement` or macro-F1 drops by more than `max_f1_drop` points. When either side is a Q/DQ ONNX, the static
TensorRT Q/DQ rule check runs too and any violation fails the gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.data.windows import WindowSet

GATE_FORMAT = "cpgait.gate/1"


@dataclass(frozen=True)
class Thresholds:
    min_agreement: float = 0.99
    max_f1_drop: float = 1.0  # macro-F1 points (percent)

    def __post_init__(self) -> None:
        if not 0 <= self.min_agreement <= 1:
            raise CpgaitError(f"--min-agreement {self.min_agreement}; expected a fraction in [0, 1]")
        if not self.max_f1_drop >= 0:
            raise CpgaitError(f"--max-f1-drop {self.max_f1_drop}; expected points >= 0")


@dataclass(frozen=True)
class GateReport:
    """Everything the gate measured; `failures` lists why it failed (empty = PASS)."""

    a: str
    b: str
    windows: int
    origin: str
    agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    class_names: tuple[str, ...]
    scores_a: dict | None
    scores_b: dict | None
    thresholds: Thresholds
    qdq_violations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def f1_drop(self) -> float | None:
        """Macro-F1 of A minus macro-F1 of B, in points (None without labels)."""
        if not self.scores_a or not self.scores_b:
            return None
        if self.scores_a["macro_f1"] is None or self.scores_b["macro_f1"] is None:
            return None
        return 100.0 * (self.scores_a["macro_f1"] - self.scores_b["macro_f1"])

    @property
    def per_class_f1_delta(self) -> list[float | None]:
        if not self.scores_a or not self.scores_b:
            return []
        return [
            None if fa is None or fb is None else fb - fa
            for fa, fb in zip(self.scores_a["per_class_f1"], self.scores_b["per_class_f1"])
        ]

    @property
    def failures(self) -> list[str]:
        out = []
        if not self.agreement >= self.thresholds.min_agreement:  # NaN (no windows compared) fails too
            out.append(f"top-1 agreement {self.agreement:.2%} < {self.thresholds.min_agreement:.2%}")
        if self.f1_drop is not None and self.f1_drop > self.thresholds.max_f1_drop:
            out.append(f"macro-F1 drop {self.f1_drop:.2f} points > {self.thresholds.max_f1_drop:g}")
        for path, problems in self.qdq_violations.items():
            out.append(f"{path}: {len(problems)} TensorRT Q/DQ rule violation(s), first: {problems[0]}")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(
            format=GATE_FORMAT,
            passed=self.ok,
            failures=self.failures,
            f1_drop_points=self.f1_drop,
            per_class_f1_delta=self.per_class_f1_delta,
        )
        return data


def runner_contract(runner: Runner, where: str) -> ModelContract:
    """The model contract the runner's file carries (activates the runner); a file without one is a user error."""
    runner.activate()
    if runner.contract is None:
        raise CpgaitError(f"{where}: has no cpgait model contract; export it with `cpgait export`")
    return runner.contract


def logits(runner: Runner, windows: WindowSet, batch: int = 32, where: str = "model") -> np.ndarray:
    """Run every window through `runner` (batched) and stack the logits (the contract's output)."""
    with runner:
        name = runner_contract(runner, where).output_name
        return np.concatenate([runner.infer(feed)[name] for feed in windows.batches(batch)]).astype(np.float32)


def compare(
    a: str,
    b: str,
    logits_a: np.ndarray,
    logits_b: np.ndarray,
    windows: WindowSet,
    class_names: tuple[str, ...],
    thresholds: Thresholds = Thresholds(),
    qdq_violations: dict[str, list[str]] | None = None,
) -> GateReport:
    """The gate's figures from two models' logits on the same windows."""
    from cpgait.runtime.core.metrics import classification_scores

    if logits_a.shape != logits_b.shape:
        raise CpgaitError(f"{a} gives logits {logits_a.shape} but {b} gives {logits_b.shape}")
    diff = np.abs(logits_a - logits_b)
    pred_a, pred_b = logits_a.argmax(1), logits_b.argmax(1)
    labelled = windows.labels >= 0
    scores: tuple[dict | None, dict | None] = (None, None)
    if labelled.any():
        y = windows.labels[labelled]
        scores = (
            classification_scores(y, pred_a[labelled], len(class_names)),
            classification_scores(y, pred_b[labelled], len(class_names)),
        )
    return GateReport(
        a=a,
        b=b,
        windows=len(windows),
        origin=windows.origin,
        agreement=float(np.mean(pred_a == pred_b)),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        class_names=tuple(class_names),
        scores_a=scores[0],
        scores_b=scores[1],
        thresholds=thresholds,
        qdq_violations=dict(qdq_violations or {}),
    )


def qdq_problems(path: str | Path) -> list[str] | None:
    """TensorRT Q/DQ rule violations of an ONNX file, or None when it is not a Q/DQ model."""
    from cpgait.calibration.qdq_rules import check_qdq_model

    if Path(path).suffix.lower() != ".onnx":
        return None
    report = check_qdq_model(path)
    return list(report.violations) if report.is_qdq else None


def verify(
    a: str | Path,
    b: str | Path,
    runner_of: Callable[[Path], Runner],
    windows_of: Callable[[ModelContract], WindowSet],
    thresholds: Thresholds = Thresholds(),
) -> GateReport:
    """Compare two model files on windows from `windows_of(contract)`; both must carry the same contract.

    `runner_of(path)` builds each file's runner (the caller picks the backend, e.g. the PyTorch runner for a
    checkpoint, so this module needs no torch).
    """
    runner_a, runner_b = runner_of(Path(a)), runner_of(Path(b))
    contract_a, contract_b = runner_contract(runner_a, str(a)), runner_contract(runner_b, str(b))
    contract_a.require_same(contract_b, f"{b} (compared with {a})")
    windows = windows_of(contract_a)
    outputs = [logits(runner, windows, where=str(path)) for runner, path in ((runner_a, a), (runner_b, b))]
    violations = {str(p): v for p in (a, b) if (v := qdq_problems(p))}
    return compare(str(a), str(b), outputs[0], outputs[1], windows, contract_a.class_names, thresholds, violations)


def render(report: GateReport) -> object:
    """A rich table of the report (the CLI prints it)."""
    from rich.table import Table

    table = Table(title=f"accuracy gate: {report.windows} windows ({report.origin})")
    table.add_column("measure")
    table.add_column(f"A: {Path(report.a).name}", justify="right")
    table.add_column(f"B: {Path(report.b).name}", justify="right")
    table.add_column("B - A", justify="right")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    scores_a, scores_b = report.scores_a, report.scores_b
    if scores_a and scores_b:
        for key, label in (("accuracy", "accuracy %"), ("macro_f1", "macro-F1 %"), ("kappa_linear", "kappa x100")):
            va, vb = scores_a[key], scores_b[key]
            table.add_row(label, pct(va), pct(vb), "-" if va is None or vb is None else f"{100 * (vb - va):+.2f}")
        for name, fa, fb, d in zip(
            report.class_names,
            scores_a["per_class_f1"],
            scores_b["per_class_f1"],
            report.per_class_f1_delta,
        ):
            table.add_row(f"F1 {name} %", pct(fa), pct(fb), "-" if d is None else f"{100 * d:+.2f}")
    table.add_row("top-1 agreement %", "", "", pct(report.agreement))
    table.add_row("max |delta logits|", "", "", f"{report.max_abs_diff:.3g}")
    table.add_row("mean |delta logits|", "", "", f"{report.mean_abs_diff:.3g}")
    return table


def write_json(report: GateReport, path: str | Path, overwrite: bool = False) -> Path:
    from cpgait.errors import atomic_output

    path = Path(path)
    try:
        with atomic_output(path, overwrite) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2))
    except OSError as exc:
        raise CpgaitError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    return path
