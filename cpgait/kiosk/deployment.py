"""What the kiosk runs: the classifier with its contract, the pose model and the backend; and the first-start
preparation that loads every network once (for TensorRT: builds and caches the engines) with progress for the admin
page. Sessions start only when it is done."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.backends.trt_engine import file_sha256
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.pose.catalog import POSE_MODELS


def reference_model() -> Path:
    """The shipped reference classifier (trained on SYNTHETIC data)."""
    from importlib.util import find_spec

    spec = find_spec("cpgait.runtime")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "reference.onnx"


@dataclass(frozen=True)
class Deployment:
    """The model files and settings every session of this kiosk uses."""

    model: Path
    contract: ModelContract
    model_sha256: str
    pose: str
    backend: str
    gate_report: dict | None
    gate_report_path: Path | None

    @classmethod
    def load(cls, model: str | Path, pose: str, backend: str, gate_report: str | Path | None) -> Deployment:
        path = Path(model)
        contract = ModelContract.from_onnx(path)
        if pose not in POSE_MODELS:
            raise CpgaitError(f"--pose {pose!r}; expected one of {', '.join(POSE_MODELS)}")
        RUNTIME_BACKENDS.get(backend)
        reason = RUNTIME_BACKENDS.unavailable_reason(backend)
        if reason:
            raise CpgaitError(f"--backend {backend}: not usable here ({reason})")
        report = None
        if gate_report is not None:
            gate_path = Path(gate_report)
            try:
                report = json.loads(gate_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise CpgaitError(f"--gate-report {gate_path}: not a readable JSON gate report ({exc})") from None
        return cls(
            path,
            contract,
            file_sha256(path),
            pose,
            backend,
            report,
            None if gate_report is None else Path(gate_report),
        )


@dataclass
class Step:
    name: str
    state: str = "waiting"  # waiting, loading, ready, failed
    seconds: float | None = None
    error: str | None = None


@dataclass
class Preparation:
    """Loading (TensorRT: building) every network of a deployment once, in a thread; `steps` show the progress."""

    deployment: Deployment
    steps: list[Step] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        from cpgait.runtime.pose.catalog import load_pose_model

        files: dict[int, Path] = {}  # which file each pose runner loads

        def factory(path: Path) -> Runner:
            runner = RUNTIME_BACKENDS.make_runner(path, self.deployment.backend)
            files[id(runner)] = Path(path)
            return runner

        pose_runners = load_pose_model(self.deployment.pose, factory).runners()
        self.pose_models = [files[id(r)] for r in pose_runners]
        self._runners = [(f"pose: {f.name}", r) for f, r in zip(self.pose_models, pose_runners)]
        self.steps = [Step(name) for name, _ in self._runners] + [Step(f"classifier: {self.deployment.model.name}")]

    def start(self) -> Preparation:
        threading.Thread(target=self._run, name="cpgait-kiosk-prepare", daemon=True).start()
        return self

    @property
    def ready(self) -> bool:
        return self.done.is_set() and all(s.state == "ready" for s in self.steps)

    @property
    def failed(self) -> str | None:
        return next((f"{s.name}: {s.error}" for s in self.steps if s.state == "failed"), None)

    def _run(self) -> None:
        try:
            runners = [r for _, r in self._runners]
            runners.append(RUNTIME_BACKENDS.make_runner(self.deployment.model, self.deployment.backend))
            for step, runner in zip(self.steps, runners):
                step.state = "loading"
                t0 = time.perf_counter()
                try:
                    with runner.activate():
                        pass
                except Exception as exc:  # a failed engine build or a broken model file: shown, not raised
                    step.state, step.error = "failed", str(exc)
                    return
                step.state, step.seconds = "ready", round(time.perf_counter() - t0, 2)
        finally:
            self.done.set()
