"""The Triton model repository (checked with Triton's own protobuf definitions) and `cpgait run --backend triton`
against a real Triton server on localhost (the `nvidia-pytriton` wheel's tritonserver, Python backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.app.run import RunOptions, run_live
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.backends.trt_engine import DeviceInfo, EngineKey, Profile, write_sidecar
from cpgait.runtime.core.contract import ModelContract
from cpgait.serve.local_server import LocalTritonServer, pytriton_server
from cpgait.serve.triton_repo import TritonSettings, write_model_repository

_ONNX_TYPES = {"tensor(float)": "TYPE_FP32"}


def parse_config(path: Path):
    """config.pbtxt read with Triton's ModelConfig protobuf (as the server reads it)."""
    model_config_pb2 = pytest.importorskip(
        "tritonclient.grpc.model_config_pb2", reason="tritonclient is not installed: pip install 'cpgait[serve]'"
    )
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_the_repository_config_matches_the_models_inputs_and_outputs(tiny_onnx: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    [version] = write_model_repository(tiny_onnx, repo, TritonSettings(max_batch_size=16, instances=2))
    assert version == repo / "tiny" / "1"
    assert (version / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    assert ModelContract.from_json((version / "contract.json").read_text()) == ModelContract.from_onnx(tiny_onnx)

    config = parse_config(repo / "tiny" / "config.pbtxt")
    from tritonclient.grpc import model_config_pb2 as pb

    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    assert config.name == "tiny" and config.backend == "onnxruntime" and config.max_batch_size == 16
    for declared, actual in ((config.input, session.get_inputs()), (config.output, session.get_outputs())):
        assert [t.name for t in declared] == [t.name for t in actual]
        for t, a in zip(declared, actual):
            assert pb.DataType.Name(t.data_type) == _ONNX_TYPES[a.type]
            assert not isinstance(a.shape[0], int)  # the batch dimension is Triton's (max_batch_size)
            assert list(t.dims) == a.shape[1:]
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    [group] = config.instance_group
    assert group.count == 2 and group.kind == pb.ModelInstanceGroup.KIND_CPU
    assert config.version_policy.latest.num_versions == 1

    [again] = write_model_repository(tiny_onnx, repo)  # a re-export is the next version; Triton serves the newest
    assert again == repo / "tiny" / "2" and (repo / "tiny" / "1" / "model.onnx").is_file()


def test_a_tensorrt_engine_adds_the_plan_variant_with_the_engines_batch_limit(tiny_onnx: Path, tmp_path: Path) -> None:
    engine = tmp_path / "tiny.plan"
    engine.write_bytes(b"stand-in: only the repository layout is checked here")
    key = EngineKey("0" * 64, "fp16", Profile(1, 4, 8), DeviceInfo("10.0", "a GPU", "8.7", 16, 8))
    contract = ModelContract.from_onnx(tiny_onnx).to_json()
    write_sidecar(engine.with_suffix(".json"), key, contract, engine.read_bytes())
    written = write_model_repository(tiny_onnx, tmp_path / "repo", engine=engine)
    assert [p.parent.name for p in written] == ["tiny", "tiny_trt"]
    assert (written[1] / "model.plan").read_bytes() == engine.read_bytes()
    config = parse_config(tmp_path / "repo" / "tiny_trt" / "config.pbtxt")
    from tritonclient.grpc import model_config_pb2 as pb

    assert config.platform == "tensorrt_plan" and config.max_batch_size == 8
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU
    assert [t.name for t in config.input] == list(ModelContract.from_onnx(tiny_onnx).input_names)


def test_a_model_with_other_inputs_is_not_added_as_a_version(tiny_onnx: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_model_repository(tiny_onnx, repo)
    config = repo / "tiny" / "config.pbtxt"
    config.write_text(config.read_text().replace('"gait_scalars"', '"other_scalars"'))
    with pytest.raises(CpgaitError, match="inputs or outputs differ"):
        write_model_repository(tiny_onnx, repo)
    with pytest.raises(CpgaitError, match="Triton backend 'tensorflow'"):
        TritonSettings(backend="tensorflow")


def test_the_triton_backend_says_why_it_cannot_reach_a_server(tiny_onnx: Path) -> None:
    if RUNTIME_BACKENDS.unavailable_reason("triton"):
        pytest.skip(RUNTIME_BACKENDS.unavailable_reason("triton"))
    runner = RUNTIME_BACKENDS.make_runner(tiny_onnx, "triton", url="127.0.0.1:9")  # discard port: nobody listens
    with pytest.raises(CpgaitError, match="Triton server 127.0.0.1:9: cannot be reached"):
        runner.activate()


@pytest.fixture(scope="module")
def triton_server(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    found = pytriton_server()
    if isinstance(found, str):
        pytest.skip(found)
    repo = tmp_path_factory.mktemp("triton") / "repo"
    write_model_repository(tiny_onnx, repo, TritonSettings(backend="python", max_batch_size=8))
    with LocalTritonServer(repo) as server:
        yield server


def test_a_real_triton_server_answers_as_onnx_runtime_does(tiny_onnx: Path, triton_server, clips: Path) -> None:
    runner = RUNTIME_BACKENDS.make_runner(tiny_onnx, "triton", url=triton_server.grpc_url)
    rng = np.random.default_rng(0)
    with runner:
        feed = {s.name: rng.random((3, *s.shape[1:]), dtype=np.float32) for s in runner.input_specs()}
        remote = runner.infer(feed)["logits"]
    local = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).run(["logits"], feed)[0]
    np.testing.assert_allclose(remote, local, atol=1e-6)

    windows = {}
    for backend, url in (("ort-cpu", None), ("triton", triton_server.http_url)):
        got = []
        options = RunOptions(source=str(clips / "walk100.mp4"), model=str(tiny_onnx), backend=backend, stride=8)
        options = RunOptions(**{**options.__dict__, "triton_url": url})
        run_live(options, on_report=lambda report, _: report.window and got.append(report.window))
        windows[backend] = got
    assert len(windows["ort-cpu"]) >= 2 and len(windows["triton"]) == len(windows["ort-cpu"])
    for a, b in zip(windows["ort-cpu"], windows["triton"]):
        assert a.frame == b.frame
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-6)
