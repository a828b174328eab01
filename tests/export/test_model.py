"""The dual-stream model: shapes per stream mode, gradients reach every parameter, config checks, ONNX export."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from cpgait.errors import CpgaitError
from cpgait.export.model import ModelConfig, SeverityModel

TINY = dict(window=16, num_series=3, num_scalars=2, width=0.05, embed_dim=8, heads=2)


def _inputs(config: ModelConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(*shape, generator=gen) for k, shape in config.input_shapes(batch).items()}


@pytest.mark.parametrize(
    "streams,names",
    [
        ("fused", ("skeleton", "gait_series", "gait_scalars")),
        ("skeleton", ("skeleton",)),
        ("gait", ("gait_series", "gait_scalars")),
    ],
)
def test_each_stream_mode_maps_its_inputs_to_class_logits(streams: str, names: tuple[str, ...]) -> None:
    config = ModelConfig(streams=streams, **TINY)
    model = SeverityModel(config).eval()
    assert config.input_names == names
    assert config.input_shapes(5).get("skeleton", (5, 3, 16, 17)) == (5, 3, 16, 17)
    logits = model(**_inputs(config, 5))
    assert logits.shape == (5, 4) and torch.isfinite(logits).all()


def test_full_width_stgcn_has_the_published_channels_and_strides() -> None:
    config = ModelConfig(streams="skeleton", window=124)
    model = SeverityModel(config).eval()
    assert config.channels == (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
    assert model.skeleton.blocks[0].residual is None and all(b.residual is not None for b in model.skeleton.blocks[1:])
    assert model.skeleton.input_bn.num_features == 3 * 17
    with torch.no_grad():
        out = model.skeleton(torch.zeros(1, 3, 124, 17))
    assert out.shape == (1, 256, 31, 17)  # two stride-2 blocks: 124 -> 62 -> 31


@pytest.mark.parametrize("streams", ["fused", "skeleton", "gait"])
def test_every_parameter_gets_a_gradient(streams: str) -> None:
    torch.manual_seed(0)
    model = SeverityModel(ModelConfig(streams=streams, **TINY)).train()
    loss = torch.nn.functional.cross_entropy(model(**_inputs(model.config, 6)), torch.tensor([0, 1, 2, 3, 0, 1]))
    loss.backward()
    without = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert without == []
    assert any("importance" in n for n, _ in model.named_parameters()) == (streams != "gait")


def test_missing_input_is_named() -> None:
    model = SeverityModel(ModelConfig(streams="fused", **TINY)).eval()
    feed = _inputs(model.config, 2)
    del feed["gait_scalars"]
    with pytest.raises(CpgaitError, match="gait_scalars"):
        model(**feed)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(streams="both"), "streams"),
        (dict(streams="gait", num_series=0), "at least one gait series"),
        (dict(num_classes=1), "class"),
        (dict(width=0.0), "width"),
        (dict(temporal_kernel=8), "odd"),
        (dict(embed_dim=10, heads=4), "multiple of heads"),
        (dict(window=4), "window"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_model_config_is_refused(change: dict, message: str) -> None:
    with pytest.raises(CpgaitError, match=message):
        ModelConfig(**{**TINY, **change})


def test_config_round_trips_through_a_dict_and_refuses_unknown_fields() -> None:
    config = ModelConfig(streams="gait", **TINY)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(CpgaitError, match="unknown model config field.*depth"):
        ModelConfig.from_dict({**config.to_dict(), "depth": 3})


def test_onnx_export_is_opset_17_without_einsum_and_matches_torch() -> None:
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    config = ModelConfig(streams="fused", **TINY)
    model = SeverityModel(config).eval()
    names = list(config.input_names)
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (),
        buffer,
        kwargs=_inputs(config, 2),
        input_names=names,
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={n: {0: "batch"} for n in [*names, "logits"]},
    )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    ops = {n.op_type for n in proto.graph.node}
    assert opset >= 17
    assert "Einsum" not in ops and {"MatMul", "Softmax", "Conv"} <= ops
    for value in proto.graph.input:  # only the batch dimension is dynamic
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and all(d.dim_value > 0 for d in dims[1:])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    feed = _inputs(config, 3, seed=1)  # another batch size than the one traced
    got = session.run(None, {k: v.numpy() for k, v in feed.items()})[0]
    with torch.no_grad():
        want = model(**feed).numpy()
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
