"""Runners: the backend registry, ONNX Runtime CPU, the CUDA runner's refusal without a GPU, and PyTorch parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cpgait.errors import CpgaitError
from cpgait.export.backends import BACKENDS
from cpgait.runtime.backends.cuda import cuda_unavailable
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner, OrtCudaRunner
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract

CONTRACT = ModelContract(
    layout="coco17", window=8, fps=30.0, series_features=("a", "b"), scalar_features=("c",), feature_joints=()
)


@pytest.fixture(scope="module")
def linear_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logits = concat(mean(skeleton), mean(gait_series), gait_scalars) @ W: a model with the contract's inputs."""
    w = np.arange(6 * 4, dtype=np.float32).reshape(6, 4) / 10
    nodes = [
        helper.make_node("ReduceMean", ["skeleton"], ["s"], axes=[2, 3], keepdims=0),
        helper.make_node("ReduceMean", ["gait_series"], ["g"], axes=[2], keepdims=0),
        helper.make_node("Concat", ["s", "g", "gait_scalars"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "w"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info(s.name, TensorProto.FLOAT, ["batch", *s.shape[1:]])
        for s in CONTRACT.input_specs()
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.add(key=METADATA_KEY, value=CONTRACT.to_json())
    path = tmp_path_factory.mktemp("m") / "linear.onnx"
    onnx.save(model, str(path))
    return path


def _feed(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {s.name: rng.standard_normal((n, *s.shape[1:])).astype(np.float32) for s in CONTRACT.input_specs()}


def test_contract_specs_name_the_inputs_and_shapes() -> None:
    specs = {s.name: s.shape for s in CONTRACT.input_specs()}
    assert specs == {"skeleton": (None, 3, 8, 17), "gait_series": (None, 2, 8), "gait_scalars": (None, 1)}


def test_make_runner_runs_ort_cpu_and_checks_inputs(linear_onnx: Path) -> None:
    feed = _feed(3)
    with BACKENDS.make_runner(linear_onnx, "ort-cpu", threads=1) as runner:
        assert isinstance(runner, OnnxRuntimeRunner) and runner.is_active
        out = runner.infer(feed)["logits"]
        with pytest.raises(CpgaitError, match=r"input 'skeleton': shape \(3, 3, 9, 17\); expected \('N', 3, 8, 17\)"):
            runner.infer({**feed, "skeleton": np.zeros((3, 3, 9, 17), np.float32)})
        with pytest.raises(CpgaitError, match="dtype float64; expected float32"):
            runner.infer({**feed, "gait_scalars": feed["gait_scalars"].astype(np.float64)})
    assert not runner.is_active
    f = np.concatenate([feed["skeleton"].mean((2, 3)), feed["gait_series"].mean(2), feed["gait_scalars"]], 1)
    w = np.arange(24, dtype=np.float32).reshape(6, 4) / 10
    assert np.allclose(out, f @ w, atol=1e-5)


@pytest.mark.parametrize(
    "backend,options,expected",
    [
        ("onnx", {}, "backend 'onnx'; expected one of ort-cpu"),
        ("ort-cpu", {"precision": "int8"}, "takes no option\\(s\\) precision; it takes: providers, threads"),
        ("trt", {"threads": 2}, "takes no option\\(s\\) threads"),
    ],
)
def test_make_runner_refuses_unknown_backends_and_options(
    linear_onnx: Path, backend: str, options: dict, expected: str
) -> None:
    with pytest.raises(CpgaitError, match=expected):
        BACKENDS.make_runner(linear_onnx, backend, **options)


def test_every_registered_backend_names_a_runner_class_and_a_reason_when_unavailable() -> None:
    for name in BACKENDS.names():
        backend = BACKENDS.get(name)
        assert issubclass(backend.runner, Runner), name
        reason = backend.unavailable()
        assert reason is None or isinstance(reason, str) and reason, name
    assert BACKENDS.unavailable_reason("ort-cpu") is None  # the embedded default runs everywhere
    no_gpu = cuda_unavailable()
    if no_gpu is not None:  # these machines: every CUDA backend says so first
        assert all(BACKENDS.unavailable_reason(n) == no_gpu for n in ("ort-cuda", "trt", "torch-cuda"))


@pytest.mark.parametrize(
    "path,backend", [("m.onnx", "ort-cpu"), ("m.int8.onnx", "ort-cpu"), ("m.plan", "trt"), ("m.pt", "torch")]
)
def test_default_backend_follows_the_file_format(path: str, backend: str) -> None:
    assert BACKENDS.default_for(path) == backend


def test_a_backend_refuses_a_file_format_it_does_not_run(linear_onnx: Path) -> None:
    with pytest.raises(CpgaitError, match="backend torch runs checkpoint files, not onnx files"):
        BACKENDS.make_runner(linear_onnx, "torch")


def test_ort_cuda_says_what_to_install_without_the_provider(linear_onnx: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here; the refusal is for CPU-only onnxruntime")
    with pytest.raises(CpgaitError, match="no CUDAExecutionProvider; install onnxruntime-gpu"):
        BACKENDS.make_runner(linear_onnx, "ort-cuda").activate()


def _cuda_ready() -> str | None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime-gpu (CUDAExecutionProvider) is not installed"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_cuda_ready() is not None, reason=str(_cuda_ready()))
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_ort_cuda_matches_cpu(linear_onnx: Path, cuda_graph: bool) -> None:
    feed = _feed(2)
    want = OnnxRuntimeRunner(linear_onnx).infer(feed)["logits"]
    with OrtCudaRunner(linear_onnx, cuda_graph=cuda_graph) as runner:
        for _ in range(3):  # the CUDA graph is captured on an early call and replayed after
            assert np.allclose(runner.infer(feed)["logits"], want, atol=1e-4)
        if cuda_graph:
            with pytest.raises(CpgaitError, match="CUDA graph was captured"):
                runner.infer(_feed(3))


def test_torch_runner_matches_the_exported_onnx(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from cpgait.export.checkpoint import Checkpoint
    from cpgait.export.model import ModelConfig, SeverityModel
    from cpgait.export.onnx_export import export_model, save_model

    torch.manual_seed(0)
    config = ModelConfig(window=8, num_series=2, num_scalars=1, width=0.125, embed_dim=8, heads=2)
    model = SeverityModel(config)
    ckpt = Checkpoint(config, CONTRACT, model.state_dict()).save(tmp_path / "m.pt")
    onnx_path = save_model(export_model(model.eval(), CONTRACT, tmp_path / "m.onnx"), tmp_path / "m.onnx")
    feed = _feed(4)
    with BACKENDS.make_runner(ckpt, "torch", threads=1) as runner:
        got = runner.infer(feed)["logits"]
        assert runner.contract == CONTRACT
    assert np.abs(got - BACKENDS.make_runner(onnx_path).infer(feed)["logits"]).max() <= 1e-4
    with pytest.raises(CpgaitError, match="model contract does not match"):
        other = ModelContract.from_dict({**CONTRACT.__dict__, "fps": 25.0})
        BACKENDS.make_runner(ckpt, "torch", contract=other).activate()
