"""The benchmark report: records, the schema-versioned JSON (`bench/schema.json`) and its validation.

A report is a plain JSON object: `schema` ("cpgait.bench/1"), `kind` ("model" or "pipeline"), the `environment`
it ran in, the `settings` it ran with, and the measurements. Every report is validated against the schema before it
is written and when it is read back as a baseline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cpgait.bench.memory import MemoryWindow
from cpgait.bench.timing import LatencyStats
from cpgait.errors import CpgaitError, atomic_output

SCHEMA_VERSION = "cpgait.bench/1"
SCHEMA_PATH = Path(__file__).with_name("schema.json")
STATUSES = ("ok", "skipped", "failed")


@dataclass(frozen=True)
class BackendResult:
    """One backend at one batch size: measured, skipped (with the reason) or failed (with the error)."""

    backend: str
    device: str
    batch: int
    status: str
    threads: int | None = None  # intra-op threads of a CPU backend; None for GPU backends and skipped ones
    reason: str | None = None
    latency: LatencyStats | None = None
    percentiles_ms: tuple[float, ...] | None = None
    throughput_per_s: float | None = None
    memory: MemoryWindow | None = None
    load_mb: float | None = None
    cuda_max_allocated_mb: float | None = None
    baseline: str | None = None
    speedup: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r}; expected one of {STATUSES}")
        if self.status == "ok" and (self.latency is None or self.throughput_per_s is None):
            raise ValueError(f"{self.backend} at batch {self.batch}: measured but no latency or throughput")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"{self.backend} at batch {self.batch}: {self.status} without a reason")
        if self.batch < 1:
            raise ValueError(f"batch {self.batch}; expected >= 1")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["percentiles_ms"] = list(self.percentiles_ms) if self.percentiles_ms is not None else None
        return data


@dataclass(frozen=True)
class StageResult:
    """One pipeline stage: latency over the frames where it ran, cost per frame over all frames (the classifier
    runs every few frames), and `share`, its part of the summed stage time."""

    stage: str
    latency: LatencyStats
    percentiles_ms: tuple[float, ...]
    per_frame_ms: float
    share: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["percentiles_ms"] = list(self.percentiles_ms)
        return data


def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validate(report: dict, where: str = "benchmark report") -> None:
    """Raise CpgaitError naming the first violation when `report` does not match `bench/schema.json`."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(report))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise CpgaitError(f"{where}: does not match the {SCHEMA_VERSION} schema at {at}: {error.message}")


def write_json(report: dict, path: Path, overwrite: bool) -> None:
    validate(report, "the report just measured")
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")


def load_report(path: Path) -> dict:
    """Read and validate a report written earlier (e.g. a `--compare` baseline)."""
    if not path.is_file():
        raise CpgaitError(f"{path}: no such benchmark report")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CpgaitError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA_VERSION:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise CpgaitError(f"{path}: schema {found!r}; expected a {SCHEMA_VERSION} benchmark report")
    validate(report, str(path))
    return report
