"""The ONNX Runtime CUDA runner's IO binding, run on the CPU: OrtValues are made on "cpu" instead of "cuda", so the
binding logic (output element types from the model, the lock around bound runs) is exercised without a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from cpgait.runtime.backends.ort_runner import OrtCudaRunner


@pytest.fixture
def two_output_onnx(tmp_path: Path) -> Path:
    """x -> (2x as float32, argmax(x) as int64): a model whose outputs are not all float32."""
    import onnx

    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "x"], ["double"]),
            helper.make_node("ArgMax", ["x"], ["best"], axis=1, keepdims=0),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [
            helper.make_tensor_value_info("double", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("best", TensorProto.INT64, ["batch"]),
        ],
    )
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_bound_outputs_take_the_models_types_and_runs_hold_the_lock(
    two_output_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []
    from_numpy, from_shape = ort.OrtValue.ortvalue_from_numpy, ort.OrtValue.ortvalue_from_shape_and_type
    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", lambda a, device, i: from_numpy(a, "cpu", i))

    def on_cpu(shape, dtype, device, i):
        made.append(np.dtype(dtype))
        return from_shape(shape, dtype, "cpu", i)

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_shape_and_type", on_cpu)
    runner = OrtCudaRunner(two_output_onnx)
    runner.session = ort.InferenceSession(str(two_output_onnx), providers=["CPUExecutionProvider"])
    runner._specs, runner._outputs = [], ["double", "best"]
    runner._binding = runner.session.io_binding()
    runner._device_inputs, runner._device_outputs = {}, {}
    held = []
    run = runner.session.run_with_iobinding
    monkeypatch.setattr(runner.session, "run_with_iobinding", lambda b: (held.append(runner._lock.locked()), run(b)))

    x = np.array([[1, 5, 2], [7, 0, 3]], np.float32)
    out = runner._infer({"x": x})
    assert made == [np.dtype(np.float32), np.dtype(np.int64)]
    assert np.array_equal(out["double"], 2 * x) and out["best"].tolist() == [1, 0]
    assert held == [True]
