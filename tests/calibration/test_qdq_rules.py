"""The static TensorRT Q/DQ rule check, on hand-built graphs that each break one rule."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cpgait.calibration.qdq_rules import check_qdq_model


def _conv_model(
    act_zero=np.int8(0), act_scale=0.1, weight_axis=0, weight_scale=(0.1, 0.2), q_to_dq=True, act_zero_present=True
) -> onnx.ModelProto:
    """x -> Q -> DQ -> Conv(DQ(int8 weight)) -> y, with the parts the parameters change."""
    w = np.ones((2, 2, 1, 1), dtype=np.int8)
    inits = [
        numpy_helper.from_array(np.asarray(act_scale, dtype=np.float32), "s_x"),
        numpy_helper.from_array(np.asarray(act_zero), "z_x"),
        numpy_helper.from_array(w, "w_q"),
        numpy_helper.from_array(np.asarray(weight_scale, dtype=np.float32), "s_w"),
        numpy_helper.from_array(np.zeros(len(weight_scale), dtype=np.int8), "z_w"),
    ]
    zx = ["z_x"] if act_zero_present else []
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_x", *zx], ["x_q"], name="q_x"),
        helper.make_node("DequantizeLinear", ["x_q", "s_x", *zx], ["x_dq"], name="dq_x")
        if q_to_dq
        else helper.make_node("Relu", ["x_q"], ["x_dq"], name="not_dq"),
        helper.make_node("DequantizeLinear", ["w_q", "s_w", "z_w"], ["w"], name="dq_w", axis=weight_axis),
        helper.make_node("Conv", ["x_dq", "w"], ["y"], name="conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_rule_abiding_model_passes() -> None:
    report = check_qdq_model(_conv_model())
    assert report.ok and report.quantize_nodes == 1 and report.dequantize_nodes == 2


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"act_zero": np.int8(3)}, "expected 0 (symmetric)"),
        ({"act_zero": np.uint8(0)}, "dtype uint8; expected int8"),
        ({"act_zero_present": False}, "no zero point"),
        ({"act_scale": -0.1}, "positive and finite"),
        ({"act_scale": 0.0}, "positive and finite"),
        ({"weight_axis": 1}, "output channel"),
        ({"q_to_dq": False}, "Q/DQ pairs"),
        ({"act_scale": (0.1, 0.2)}, "per channel"),
    ],
)
def test_each_broken_rule_is_reported(kwargs: dict, expected: str) -> None:
    report = check_qdq_model(_conv_model(**kwargs))
    assert not report.ok
    assert any(expected in v for v in report.violations), report.violations


def test_contrib_operators_are_reported() -> None:
    model = _conv_model()
    model.graph.node[3].domain = "com.microsoft"
    report = check_qdq_model(model)
    assert any("domain 'com.microsoft'" in v for v in report.violations)


def test_a_float_model_is_not_a_qdq_model() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    report = check_qdq_model(helper.make_model(graph))
    assert not report.is_qdq and not report.ok and report.violations == ()


def _weight_model(
    weight_form: str = "int8",
    axis: int = 0,
    scales: int = 2,
    dq_zero: bool = True,
    weight_dtype=np.int8,
    zero_shape: tuple[int, ...] | None = None,
) -> onnx.ModelProto:
    """x -> Q -> DQ(no zero point unless `dq_zero`) -> Conv(W) -> y, W either int8 -> DQ (ONNX Runtime's form) or
    float -> per-channel Q -> DQ (the form NVIDIA's quantization tools export)."""
    w_scale = np.linspace(0.1, 0.2, scales).astype(np.float32)
    w_zero = np.zeros(zero_shape if zero_shape is not None else (scales,), np.int8)
    inits = [
        numpy_helper.from_array(np.asarray(0.1, np.float32), "s_x"),
        numpy_helper.from_array(np.asarray(0, np.int8), "z_x"),
        numpy_helper.from_array(w_scale, "s_w"),
        numpy_helper.from_array(w_zero, "z_w"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["x_q"], name="q_x"),
        helper.make_node("DequantizeLinear", ["x_q", "s_x", *(["z_x"] if dq_zero else [])], ["x_dq"], name="dq_x"),
    ]
    if weight_form == "int8":
        inits.append(numpy_helper.from_array(np.ones((2, 2, 1, 1), weight_dtype), "w_q"))
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "s_w", "z_w"], ["w"], name="dq_w", axis=axis))
    else:
        inits.append(numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w_f"))
        nodes += [
            helper.make_node("QuantizeLinear", ["w_f", "s_w", "z_w"], ["w_q"], name="q_w", axis=axis),
            helper.make_node("DequantizeLinear", ["w_q", "s_w", "z_w"], ["w"], name="dq_w", axis=axis),
        ]
    nodes.append(helper.make_node("Conv", ["x_dq", "w"], ["y"], name="conv"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"dq_zero": False},  # a DQ may omit its zero point: 0 of its int8 input
        {"weight_form": "float"},  # float weight -> per-channel Q -> DQ
        {"weight_form": "float", "dq_zero": False},
    ],
)
def test_valid_forms_pass(kwargs: dict) -> None:
    report = check_qdq_model(_weight_model(**kwargs))
    assert report.ok, report.violations


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"scales": 3}, "3 per-channel scales for axis 0 of size 2"),
        ({"weight_form": "float", "scales": 3}, "3 per-channel scales for axis 0 of size 2"),
        ({"weight_form": "float", "axis": 1}, "the output channel of Conv 'conv' weight is axis 0"),
        ({"axis": 5}, "per-channel axis 5 outside the weight's rank 4"),
        ({"weight_dtype": np.uint8}, "dequantizes a uint8 constant; expected int8 weights"),
        ({"zero_shape": (1,)}, "zero point shape (1,) differs from the scale's (2,)"),
    ],
)
def test_invalid_weight_quantization_is_reported(kwargs: dict, expected: str) -> None:
    report = check_qdq_model(_weight_model(**kwargs))
    assert not report.ok
    assert any(expected in v for v in report.violations), report.violations
