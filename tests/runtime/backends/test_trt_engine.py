"""TensorRT engine plumbing that needs no TensorRT: profiles, cache keys, version dispatch, side-cars, refusals.

The TensorRT build and run themselves are marked `tensorrt` and skip where TensorRT is absent (everywhere here:
see GPU.md).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cpgait.errors import CpgaitError
from cpgait.runtime.backends import trt_engine as engine
from cpgait.runtime.backends.trt_engine import (
    BuildPlan,
    DeviceInfo,
    EngineKey,
    Profile,
    build_plan,
    check_engine_device,
    engine_key,
    engine_paths,
    load_engine,
    model_kind,
    read_sidecar,
    tensorrt_major,
    write_sidecar,
)
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
ORIN = DeviceInfo("10.3.0", "Orin", "8.7", 16, 61)  # AGX Orin 64 GB
H100 = DeviceInfo("11.4.0", "NVIDIA H100 80GB HBM3", "9.0", 132, 79)
CONTRACT = ModelContract(
    layout="coco17", window=8, fps=30.0, series_features=("a",), scalar_features=("b",), feature_joints=()
)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1,1,8", Profile(1, 1, 8)),
        (" 2, 4 ,4", Profile(2, 4, 4)),
        ("1,8", CpgaitError),
        ("0,1,8", CpgaitError),
        ("1,9,8", CpgaitError),
        ("4,2,8", CpgaitError),
        ("a,b,c", CpgaitError),
        ("-1,1,8", CpgaitError),
    ],
)
def test_profile_parse_and_validation(text: str, expected: object) -> None:
    if expected is CpgaitError:
        with pytest.raises(CpgaitError, match="--batch|batch profile"):
            Profile.parse(text)
    else:
        assert Profile.parse(text) == expected


def test_engine_key_is_a_pure_function_of_its_parts() -> None:
    key = engine_key("ab" * 32, "int8", Profile(1, 1, 8), ORIN)
    assert key == engine_key("ab" * 32, "int8", Profile(1, 1, 8), ORIN)
    assert key.digest() == engine_key("ab" * 32, "int8", Profile(1, 1, 8), ORIN).digest()
    assert len(key.digest()) == 16 and int(key.digest(), 16) >= 0
    variants = [
        replace(key, model_sha256="cd" * 32),
        replace(key, precision="fp16"),
        replace(key, profile=Profile(1, 2, 8)),
        replace(key, device=replace(ORIN, tensorrt_version="10.4.0")),
        replace(key, device=replace(ORIN, gpu_name="Xavier")),
        replace(key, device=replace(ORIN, compute_capability="7.2")),
        replace(key, device=replace(ORIN, multiprocessors=8)),  # an Orin Nano: also "Orin", sm 8.7
        replace(key, device=replace(ORIN, memory_gib=7)),
    ]
    digests = {key.digest()} | {v.digest() for v in variants}
    assert len(digests) == 1 + len(variants)
    assert EngineKey.from_dict(key.to_dict()) == key


def test_engine_paths_carry_the_stem_precision_and_key(tmp_path: Path) -> None:
    key = engine_key("00" * 32, "fp16", Profile(1, 1, 8), ORIN)
    plan, side = engine_paths(tmp_path, "models/reference.int8.onnx", key)
    assert plan == tmp_path / f"reference.int8.fp16.{key.digest()}.plan" and side == plan.with_suffix(".json")


@pytest.mark.parametrize(
    "precision,major,kind,expected",
    [
        ("fp32", 10, "fp32", BuildPlan(False, (), False)),
        ("fp32", 11, "fp32", BuildPlan(False, (), False)),
        ("fp16", 10, "fp32", BuildPlan(False, ("FP16",), False)),
        ("fp16", 10, "fp16", BuildPlan(True, (), False)),
        ("fp16", 11, "fp16", BuildPlan(False, (), False)),
        ("fp16", 11, "fp32", "export the FP16 variant"),
        ("int8", 10, "qdq", BuildPlan(False, ("INT8", "FP16"), False)),
        ("int8", 11, "qdq", BuildPlan(False, (), False)),
        ("int8", 10, "fp32", BuildPlan(False, ("INT8",), True)),
        ("int8", 11, "fp32", "TensorRT 11 has no implicit INT8"),
        ("int8", 10, "fp16", "needs the FP32 ONNX"),
        ("fp32", 11, "qdq", "a Q/DQ model builds as int8"),
        ("fp32", 11, "fp16", "build the FP32 ONNX"),
        ("int4", 10, "fp32", "precision 'int4'"),
        ("fp32", 8, "fp32", "TensorRT 8.x is not supported"),
    ],
)
def test_build_plan_dispatches_on_tensorrt_version(precision: str, major: int, kind: str, expected: object) -> None:
    if isinstance(expected, str):
        with pytest.raises(CpgaitError, match=expected):
            build_plan(precision, major, kind)
    else:
        assert build_plan(precision, major, kind) == expected


@pytest.mark.parametrize("version,major", [("10.3.0", 10), ("11.4.0.106", 11), ("", None), ("trt", None)])
def test_tensorrt_major_reads_a_module_version(version: str, major: int | None) -> None:
    fake = SimpleNamespace(__version__=version)
    if major is None:
        with pytest.raises(CpgaitError, match="cannot read the TensorRT version"):
            tensorrt_major(fake)
    else:
        assert tensorrt_major(fake) == major


def _onnx(path: Path, dtype: int = TensorProto.FLOAT, qdq: bool = False) -> Path:
    np_type = onnx.helper.tensor_dtype_to_np_dtype(dtype)
    w = numpy_helper.from_array(np.ones((2, 2), dtype=np_type), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    inits = [w]
    if qdq:
        inits += [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int8(0), "z")]
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
            helper.make_node("MatMul", ["xd", "w"], ["y"]),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", dtype, ["batch", 2])],
        [helper.make_tensor_value_info("y", dtype, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.add(key=METADATA_KEY, value=CONTRACT.to_json())
    onnx.save(model, str(path))
    return path


def test_model_kind_tells_fp32_fp16_and_qdq_apart(tmp_path: Path) -> None:
    assert model_kind(_onnx(tmp_path / "a.onnx")) == "fp32"
    assert model_kind(_onnx(tmp_path / "b.onnx", TensorProto.FLOAT16)) == "fp16"
    assert model_kind(_onnx(tmp_path / "c.onnx", qdq=True)) == "qdq"


def test_sidecar_round_trip_and_refusal_on_another_device(tmp_path: Path) -> None:
    key = engine_key("11" * 32, "int8", Profile(1, 1, 8), ORIN)
    plan = tmp_path / "m.int8.plan"
    plan.write_bytes(b"engine bytes")
    write_sidecar(plan.with_suffix(".json"), key, CONTRACT.to_json(), b"engine bytes")
    got_key, contract = read_sidecar(plan)
    assert got_key == key and ModelContract.from_dict(contract) == CONTRACT
    assert load_engine(plan, here=ORIN) == (b"engine bytes", contract)
    with pytest.raises(
        CpgaitError,
        match=r"built for Orin \(sm 8\.7, 16 SMs, 61 GiB\) with TensorRT 10\.3\.0, but this is NVIDIA "
        r"H100 80GB HBM3 \(sm 9\.0, 132 SMs, 79 GiB\) with TensorRT 11\.4\.0.*rebuild it here with "
        r"`cpgait build MODEL.onnx --precision int8 --batch 1,1,8`",
    ):
        load_engine(plan, here=H100)
    check_engine_device(plan, key, ORIN)


@pytest.mark.parametrize(
    "sidecar,expected",
    [
        (None, r"no side-car m\.json"),
        ("{not json", "not a cpgait engine side-car"),
        ('{"format": "other/1"}', "format 'other/1'"),
        ("[1, 2]", "format 'list'"),
        ('{"format": "cpgait.engine/1", "key": {}}', "from an older cpgait"),
        ('{"format": "cpgait.engine/2", "key": {}}', "not a cpgait engine side-car"),
    ],
)
def test_broken_sidecars_are_named(tmp_path: Path, sidecar: str | None, expected: str) -> None:
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"x")
    if sidecar is not None:
        plan.with_suffix(".json").write_text(sidecar)
    with pytest.raises(CpgaitError, match=expected):
        read_sidecar(plan)


def test_tensorrt_runner_refuses_an_engine_from_another_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cpgait.runtime.backends.trt_runner import TensorRTRunner

    plan = tmp_path / "m.plan"
    plan.write_bytes(b"x")
    key = engine_key("22" * 32, "fp16", Profile(1, 1, 8), ORIN)
    write_sidecar(plan.with_suffix(".json"), key, CONTRACT.to_json(), b"x")
    monkeypatch.setattr(engine, "current_device", lambda: H100)
    with pytest.raises(CpgaitError, match="built for Orin .* but this is NVIDIA H100"):
        TensorRTRunner(plan).activate()


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here; this checks the message without it")
def test_build_without_tensorrt_exits_2_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from cpgait.cli import main

    model = _onnx(tmp_path / "m.onnx")
    monkeypatch.setattr(
        sys,
        "argv",
        ["cpgait", "build", str(model), "--precision", "fp16", "--out", str(tmp_path / "engines"), "--no-gate"],
    )
    with pytest.raises(SystemExit, match="^2$") as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and "TensorRT is not installed here" in err and "Traceback" not in err
    assert not (tmp_path / "engines").exists()


@pytest.mark.parametrize(
    "precision,workspace,expected",
    [("fp32", 0, "--workspace 0 MB; expected at least 1"), ("fp32", 1024, "no such ONNX model file")],
)
def test_build_checks_its_arguments_before_tensorrt(
    tmp_path: Path, precision: str, workspace: int, expected: str
) -> None:
    from cpgait.runtime.backends.trt_engine import build_engine

    model = _onnx(tmp_path / "m.onnx") if workspace == 0 else tmp_path / "absent.onnx"
    with pytest.raises(CpgaitError, match=expected):
        build_engine(model, precision, Profile(1, 1, 8), tmp_path / "e", workspace_mb=workspace)


def _tensorrt_gpu() -> str | None:
    if not HAS_TENSORRT:
        return "TensorRT is not installed (it cannot be installed on this project's machines; see GPU.md)"
    return None


@pytest.mark.tensorrt
@pytest.mark.skipif(_tensorrt_gpu() is not None, reason=str(_tensorrt_gpu()))
def test_build_and_run_an_engine(tmp_path: Path) -> None:
    from cpgait.runtime.backends.trt_engine import build_engine
    from cpgait.runtime.backends.trt_runner import TensorRTRunner

    model = _onnx(tmp_path / "m.onnx")
    plan = build_engine(model, "fp32", Profile(1, 2, 4), tmp_path / "engines")
    assert build_engine(model, "fp32", Profile(1, 2, 4), tmp_path / "engines") == plan  # cache hit
    x = np.ones((3, 2), np.float32)
    with TensorRTRunner(plan) as runner:
        assert np.allclose(runner.infer({"x": x})["y"], x @ np.ones((2, 2), np.float32))


def test_the_side_car_contract_is_the_models_or_none_for_a_pose_model() -> None:
    assets = Path(engine.__file__).parents[1] / "assets"
    assert ModelContract.read_onnx(assets / "movenet_lightning.onnx") is None
    reference = assets / "reference.onnx"
    assert ModelContract.read_onnx(reference) == ModelContract.from_onnx(reference)


@pytest.mark.parametrize(
    "stem,precision", [("reference", "fp32"), ("reference.fp16", "fp16"), ("reference.int8", "int8")]
)
def test_the_tensorrt_runner_builds_an_onnx_at_the_files_precision(
    monkeypatch: pytest.MonkeyPatch, stem: str, precision: str
) -> None:
    from cpgait.runtime.backends.trt_runner import TensorRTRunner

    asked = {}

    def fake_build(model, precision, profile, out_dir, **options):
        asked.update(precision=precision, **options)
        raise CpgaitError("stop here: no TensorRT on this machine")

    monkeypatch.setattr(engine, "build_engine", fake_build)
    runner = TensorRTRunner(Path(engine.__file__).parents[1] / "assets" / f"{stem}.onnx")
    with pytest.raises(CpgaitError, match="stop here"):
        runner.activate()
    assert asked == {"precision": precision, "require_contract": False}
