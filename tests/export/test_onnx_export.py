"""ONNX export: opset, dynamic batch only, contract in the metadata, parity with PyTorch, FP16 variant, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from cpgait.errors import CpgaitError  # noqa: E402
from cpgait.export import onnx_export  # noqa: E402
from cpgait.export.checkpoint import Checkpoint  # noqa: E402
from cpgait.export.model import ModelConfig, SeverityModel  # noqa: E402
from cpgait.export.onnx_export import ParityReport, export_checkpoint, parity  # noqa: E402
from cpgait.runtime.core.contract import ModelContract  # noqa: E402
from cpgait.runtime.data.windows import synthetic_windows  # noqa: E402

SERIES, SCALARS = ("knee_flexion_left", "knee_flexion_right"), ("cadence", "speed", "step_time")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeverityModel, ModelContract]:
    """A tiny randomly initialised fused model (not trained) and its checkpoint."""
    torch.manual_seed(0)
    config = ModelConfig(window=16, num_series=2, num_scalars=3, width=0.125, embed_dim=8, heads=2)
    contract = ModelContract(
        layout="coco17", window=16, fps=30.0, series_features=SERIES, scalar_features=SCALARS, feature_joints=()
    )
    model = SeverityModel(config).eval()
    path = Checkpoint(config, contract, model.state_dict()).save(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    return path, model, contract


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory: pytest.TempPathFactory):
    """The tiny checkpoint exported once, with its FP16 variant."""
    return export_checkpoint(tiny[0], tmp_path_factory.mktemp("onnx") / "m.onnx", fp16=True)


def test_export_writes_a_checked_opset17_graph_with_the_contract(tiny, exported) -> None:
    _, _, contract = tiny
    out, result = exported.path, exported
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    assert [i.name for i in proto.graph.input] == ["skeleton", "gait_series", "gait_scalars"]
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param and all(d.dim_value > 0 for d in dims[1:])
    assert "Einsum" not in {n.op_type for n in proto.graph.node}
    assert ModelContract.from_onnx(out) == contract
    assert result.parity.ok and result.parity.max_abs_diff <= 1e-4 and "synthetic" in result.parity.origin


def test_batch_is_dynamic(tiny, exported) -> None:
    _, model, contract = tiny
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    for n in (1, 5):
        feed = synthetic_windows(contract, n).inputs
        got = session.run(["logits"], feed)[0]
        with torch.inference_mode():
            want = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).numpy()
        assert got.shape == (n, 4) and np.abs(got - want).max() <= 1e-4


def test_fp16_variant_keeps_float32_io(tiny, exported) -> None:
    _, _, contract = tiny
    result = exported
    assert result.fp16_path == result.path.with_name("m.fp16.onnx")
    half = onnx.load(str(result.fp16_path))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer)
    assert all(
        v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in list(half.graph.input) + list(half.graph.output)
    )
    assert ModelContract.from_onnx(result.fp16_path) == contract
    assert result.fp16_parity.max_abs_diff < 5e-2


def test_parity_measures_the_difference(tiny, exported) -> None:
    _, model, contract = tiny
    windows = synthetic_windows(contract, 8)
    shifted = SeverityModel(model.config).eval()
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        shifted.head[-1].bias += 1e-3
    report: ParityReport = parity(shifted, onnx.load(str(exported.path)), windows)
    assert not report.ok and report.max_abs_diff == pytest.approx(1e-3, rel=1e-2)


def test_failed_parity_writes_nothing(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, _, _ = tiny
    monkeypatch.setattr(onnx_export, "parity", lambda *a, **k: ParityReport(8, "test", 1.0, 0.5, 1e-4))
    out = tmp_path / "m.onnx"
    with pytest.raises(CpgaitError, match=r"parity FAIL.*was not written"):
        export_checkpoint(ckpt, out)
    assert not out.exists()


def test_a_failing_fp16_variant_is_not_written(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, _, _ = tiny
    monkeypatch.setattr(onnx_export, "FP16_TOLERANCE", 0.0)  # FP16 always differs a little from FP32
    with pytest.raises(CpgaitError, match=r"FP16 variant does not reproduce.*m\.fp16\.onnx was not written"):
        export_checkpoint(ckpt, tmp_path / "m.onnx", fp16=True)
    assert not (tmp_path / "m.fp16.onnx").exists()


@pytest.mark.parametrize(
    "case,expected",
    [
        ("exists", "already exists; pass --overwrite"),
        ("unwritable", "cannot write there"),
        ("suffix", "must end in .onnx"),
        ("opset", "--opset 16"),
        ("corrupt", "not a readable cpgait checkpoint"),
    ],
)
def test_export_errors(tiny, tmp_path: Path, case: str, expected: str) -> None:
    ckpt, _, _ = tiny
    out, opset = tmp_path / "m.onnx", 17
    if case == "exists":
        out.write_bytes(b"keep me")
    if case == "unwritable":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "m.onnx"
    if case == "suffix":
        out = tmp_path / "m.pb"
    if case == "opset":
        opset = 16
    if case == "corrupt":
        ckpt = tmp_path / "bad.pt"
        ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CpgaitError, match=expected):
        export_checkpoint(ckpt, out, opset=opset)
    if case == "exists":
        assert out.read_bytes() == b"keep me"


def test_cli_refuses_to_overwrite_with_exit_2(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from cpgait.cli import main

    out = tmp_path / "m.onnx"
    out.write_bytes(b"x")
    monkeypatch.setattr(sys, "argv", ["cpgait", "export", str(tiny[0]), "-o", str(out)])
    with pytest.raises(SystemExit, match="^2$") as info:
        main()
    assert info.value.code == 2 and "already exists" in capsys.readouterr().err
