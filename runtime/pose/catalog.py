"""The pose models that ship, and their loader by name.

Two pose pipelines ship (ONNX files in `runtime/assets`, made by `scripts/convert_pose_models.py`, see NOTICE):
`blazepose` (MediaPipe BlazePose full, 33 points with heels and toes; the default) and `movenet` (MoveNet Lightning,
COCO-17; the fast option). A new pose model is a module in this package implementing `PoseModel`, added here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.pose.blazepose import BlazePose
from cpgait.runtime.pose.interface import PoseModel, RunnerFactory
from cpgait.runtime.pose.movenet import MoveNet

POSE_MODELS: dict[str, Callable[[RunnerFactory], PoseModel]] = {"blazepose": BlazePose, "movenet": MoveNet}


def load_pose_model(name: str, backend: str | RunnerFactory = "ort-cpu", **runner_options: object) -> PoseModel:
    """The pose pipeline `name` ("blazepose" or "movenet") with its models on `backend`.

    `backend` is a name from `RUNTIME_BACKENDS` (with `runner_options` such as threads=2 passed on) or a factory
    that builds a Runner from a model path.
    """
    if name not in POSE_MODELS:
        raise CpgaitError(f"pose model {name!r}; expected one of: {', '.join(POSE_MODELS)}")
    factory: RunnerFactory
    if isinstance(backend, str):
        backend_name = backend
        RUNTIME_BACKENDS.get(backend_name)  # an unknown name fails here, before any model is built

        def factory(path: Path) -> Runner:
            return RUNTIME_BACKENDS.make_runner(path, backend_name, **runner_options)
    else:
        factory = backend
    return POSE_MODELS[name](factory)
