"""The pose models that ship, and their loader by name.

Three pose pipelines ship (ONNX files in `runtime/assets`, made by `scripts/convert_pose_models.py`, see NOTICE):
`blazepose` (MediaPipe BlazePose with the full landmark model, 33 points with heels and toes; the default),
`blazepose-lite` (the same detector and points with MediaPipe's lite landmark model: the fast option that still
feeds the feet models) and `movenet` (MoveNet Lightning, COCO-17, no feet). What each costs in speed, keypoint error
and gait features on the demo clip is in the README ("Pose models"). A new pose model is a module in this package
implementing `PoseModel`, added here.

Each pipeline's networks are ONNX files named as in `POSE_NETWORKS`: the shipped FP32 ones, or those in a folder
given as `models` (`cpgait run --pose-models DIR`), such as the FP16 variants `cpgait export-pose` writes for ONNX
Runtime CUDA and TensorRT. A runner reads a file's precision from its graph.
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

# pose option -> the names of its networks (`<name>.onnx`), in the order `PoseModel.runners()` gives them
POSE_NETWORKS: dict[str, tuple[str, ...]] = {
    "blazepose": ("blazepose_detector", "blazepose_landmarks_full"),
    "blazepose-lite": ("blazepose_detector", "blazepose_landmarks_lite"),
    "movenet": ("movenet_lightning",),
}


def _blazepose(make_runner: RunnerFactory, models: Path | None, name: str) -> PoseModel:
    detector, landmarks = (asset(network, models) for network in POSE_NETWORKS[name])
    return BlazePose(make_runner, detector=detector, landmarks=landmarks, name=name)


POSE_MODELS: dict[str, Callable[[RunnerFactory, Path | None], PoseModel]] = {
    "blazepose": lambda make_runner, models: _blazepose(make_runner, models, "blazepose"),
    "blazepose-lite": lambda make_runner, models: _blazepose(make_runner, models, "blazepose-lite"),
    "movenet": lambda make_runner, models: MoveNet(make_runner, asset("movenet_lightning", models)),
}


def load_pose_model(
    name: str, backend: str | RunnerFactory = "ort-cpu", *, models: str | Path | None = None, **runner_options: object
) -> PoseModel:
    """The pose pipeline `name` (a key of `POSE_MODELS`) with its networks on `backend`.

    `backend` is a name from `RUNTIME_BACKENDS` (with `runner_options` such as threads=2 passed on) or a factory
    that builds a Runner from a model path; `models` a folder holding the networks instead of the shipped files.
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
    return POSE_MODELS[name](factory, None if models is None else Path(models))
