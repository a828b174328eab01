"""The pose models that ship, and their loader by name.

Three pose pipelines ship (ONNX files in `runtime/assets`, made by `scripts/convert_pose_models.py`, see NOTICE):
`blazepose` (MediaPipe BlazePose with the full landmark model, 33 points with heels and toes; the default),
`blazepose-lite` (the same detector and points with MediaPipe's lite landmark model: the fast option that still
feeds the feet models) and `movenet` (MoveNet Lightning, COCO-17, no feet). What each costs in speed, keypoint error
and gait features on the demo clip is in the README ("Pose models"). A new pose model is a module in this package
implementing `PoseModel`, added here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.pose.blazepose import BlazePose
from cpgait.runtime.pose.interface import PoseModel, RunnerFactory, asset
from cpgait.runtime.pose.movenet import MoveNet


def _blazepose_lite(make_runner: RunnerFactory) -> PoseModel:
    return BlazePose(make_runner, landmarks=asset("blazepose_landmarks_lite"), name="blazepose-lite")


POSE_MODELS: dict[str, Callable[[RunnerFactory], PoseModel]] = {
    "blazepose": BlazePose,
    "blazepose-lite": _blazepose_lite,
    "movenet": MoveNet,
}


def load_pose_model(name: str, backend: str | RunnerFactory = "ort-cpu", **runner_options: object) -> PoseModel:
    """The pose pipeline `name` (a key of `POSE_MODELS`) with its models on `backend`.

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
