"""The thread budget: automatic from the core count, overridable, and handed to the runners that take it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.live.thread_budget import ThreadBudget, available_cores

ASSETS = Path(__file__).resolve().parents[3] / "runtime" / "assets"


@pytest.mark.parametrize("cores,pose", [(1, 1), (2, 2), (3, 2), (4, 3), (16, 15)])
def test_the_pose_networks_get_every_core_but_one_from_three_cores_on(cores: int, pose: int) -> None:
    budget = ThreadBudget.auto(cores)
    assert (budget.pose, budget.classifier, budget.opencv, budget.decode, budget.spinning) == (pose, 1, 1, 1, False)


def test_an_override_wins_and_the_default_follows_this_machine() -> None:
    assert ThreadBudget.auto(8, pose=2).pose == 2
    cores = available_cores()
    assert ThreadBudget.auto().pose == (cores if cores <= 2 else cores - 1)


@pytest.mark.parametrize(
    "kwargs", [{"pose": 0}, {"pose": 2, "classifier": 0}, {"pose": 1, "opencv": -1}, {"pose": 1, "decode": 0}]
)
def test_a_budget_below_one_thread_is_refused(kwargs: dict) -> None:
    with pytest.raises(CpgaitError, match="expected a whole number >= 1"):
        ThreadBudget(**kwargs)


def test_cpu_runners_get_threads_and_no_spinning_gpu_runners_nothing() -> None:
    budget = ThreadBudget(pose=3, classifier=1)
    assert budget.runner_options("ort-cpu", "pose") == {"threads": 3, "spinning": False}
    assert budget.runner_options("ort-cpu", "classifier") == {"threads": 1, "spinning": False}
    assert budget.runner_options("trt", "pose") == {}
    with pytest.raises(ValueError, match="role"):
        budget.runner_options("ort-cpu", "decoder")


def test_an_ort_session_without_spinning_runs() -> None:
    runner = OnnxRuntimeRunner(ASSETS / "reference.onnx", threads=1, spinning=False)
    runner.activate()
    assert runner.session is not None
    assert runner.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
