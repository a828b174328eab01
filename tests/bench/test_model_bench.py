"""`cpgait-bench model`: a report that validates against the schema, skipped backends reported with their reason,
the PyTorch ratio taken in the same run, `--compare` flagging a regression, and bad input -> exit 2."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cpgait.bench import backends as backends_module
from cpgait.bench.backends import TARGETS, find_model_files, parse_backends
from cpgait.bench.cli import main
from cpgait.bench.compare import compare, parse_threshold
from cpgait.bench.model import make_feed, run_model_bench
from cpgait.bench.report import not_run, to_markdown
from cpgait.bench.results import load_report, validate, write_json
from cpgait.bench.timing import Budget
from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract

CONTRACT = ModelContract(
    layout="coco17",
    window=8,
    fps=30.0,
    series_features=(),
    scalar_features=(),
    feature_joints=(),
    streams="skeleton",
    training_data="test stand-in, no training",
)


def _tiny_onnx(path: Path, window: int = 8) -> Path:
    """skeleton [N, 3, T, 17] -> mean over time and joints -> [N, 3] @ W -> logits [N, 4], with the contract."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [3, 4], np.linspace(-1, 1, 12).tolist())
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["skeleton", "axes"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("skeleton", TensorProto.FLOAT, ["batch", 3, window, 17])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        initializer=[weight, helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, dataclasses.replace(CONTRACT, window=window).to_json()
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def report(tiny: Path) -> dict:
    files = find_model_files(str(tiny))
    chosen = parse_backends("ort-cpu,torch,trt-fp32,ort-cuda")
    return run_model_bench(files, chosen, [1, 2], Budget(warmup=2, iters=6), threads=[1], rounds=2)


def test_report_validates_against_the_schema_and_round_trips(report: dict, tmp_path: Path) -> None:
    validate(report)
    write_json(report, tmp_path / "r.json", overwrite=False)
    assert load_report(tmp_path / "r.json") == json.loads(json.dumps(report))
    measured = [r for r in report["results"] if r["status"] == "ok"]
    assert [(r["backend"], r["batch"]) for r in measured] == [("ort-cpu", 1), ("ort-cpu", 2)]
    assert all(r["latency"]["n"] == 6 and r["throughput_per_s"] > 0 for r in measured)
    assert report["model"]["contract"]["window"] == 8
    assert report["environment"]["versions"]["onnxruntime"]


def test_every_requested_backend_is_in_the_report_skipped_ones_with_their_reason(report: dict) -> None:
    rows = {(r["backend"], r["batch"]): r for r in report["results"]}
    assert set(rows) == {(b, n) for b in ("ort-cpu", "torch", "trt-fp32", "ort-cuda") for n in (1, 2)}
    assert rows[("torch", 1)]["status"] == "skipped" and "no checkpoint" in rows[("torch", 1)]["reason"]
    assert rows[("ort-cpu", 1)]["speedup"] is None  # no baseline measured: no ratio invented
    lines = not_run(report)
    assert any(line.startswith("trt-fp32 — skipped: ") for line in lines)
    assert "trt-fp32 — skipped" in to_markdown(report)


def test_a_missing_library_is_the_reason_given(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from cpgait.export.backends import BACKENDS

    trt = replace(BACKENDS.get("trt"), requires=(lambda: None, lambda: "tensorrt is not installed (test)"))
    monkeypatch.setitem(BACKENDS._backends, "trt", trt)
    reason = backends_module.unavailable(TARGETS["trt-fp32"], find_model_files(str(tiny)))
    assert reason == "tensorrt is not installed (test)"


def test_the_pytorch_ratio_is_measured_in_the_same_run(tiny: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from cpgait.export.checkpoint import Checkpoint
    from cpgait.export.model import ModelConfig, SeverityModel

    config = ModelConfig(streams="skeleton", window=8, width=0.05)
    Checkpoint(config, CONTRACT, SeverityModel(config).state_dict()).save(tmp_path / "tiny.pt")
    files = find_model_files(str(tiny), checkpoint=tmp_path / "tiny.pt")
    result = run_model_bench(files, parse_backends("torch,ort-cpu"), [1], Budget(warmup=1, iters=4), [1, 2], rounds=2)
    rows = {(r["backend"], r["threads"]): r for r in result["results"]}
    assert set(rows) == {("torch", 1), ("torch", 2), ("ort-cpu", 1), ("ort-cpu", 2)}
    for threads in (1, 2):  # each ratio is against PyTorch at the same thread count
        torch_row, ort_row = rows[("torch", threads)], rows[("ort-cpu", threads)]
        assert torch_row["status"] == "ok" and torch_row["speedup"] == 1.0
        expected = torch_row["latency"]["p50_ms"] / ort_row["latency"]["p50_ms"]
        assert ort_row["speedup"] == pytest.approx(expected, rel=1e-3)
    validate(result)


def test_the_schema_rejects_a_broken_report(report: dict) -> None:
    broken = copy.deepcopy(report)
    del broken["environment"]["versions"]["onnxruntime"]
    with pytest.raises(CpgaitError, match="onnxruntime"):
        validate(broken)
    measured_without_latency = copy.deepcopy(report)
    next(r for r in measured_without_latency["results"] if r["status"] == "ok")["latency"] = None
    with pytest.raises(CpgaitError, match="schema"):
        validate(measured_without_latency)
    skipped_without_reason = copy.deepcopy(report)
    next(r for r in skipped_without_reason["results"] if r["status"] == "skipped")["reason"] = None
    with pytest.raises(CpgaitError, match="schema"):
        validate(skipped_without_reason)


def _scaled(report: dict, factor: float) -> dict:
    """The same report with every latency multiplied by `factor` (a fabricated earlier run)."""
    other = copy.deepcopy(report)
    for r in other["results"]:
        if r["status"] == "ok":
            r["latency"] = {k: (v * factor if k.endswith("_ms") else v) for k, v in r["latency"].items()}
    return other


@pytest.mark.parametrize(
    "factor,threshold,regressions", [(1 / 1.5, "10%", 4), (1 / 1.5, "60%", 0), (2.0, "10%", 0), (1.0, "0", 0)]
)
def test_compare_flags_regressions_beyond_the_threshold(
    report: dict, factor: float, threshold: str, regressions: int
) -> None:
    rows = compare(report, _scaled(report, factor), parse_threshold(threshold))
    assert len(rows) == 4  # p50 and p95 of ort-cpu at batches 1 and 2
    assert sum(r.regression for r in rows) == regressions
    assert all(r.slowdown == pytest.approx(1 / factor, rel=1e-6) for r in rows)


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["cpgait-bench", *args])
    with pytest.raises(SystemExit, match=r"^\d*$") as done:  # an exit status, the message on stderr
        main()
    out = capsys.readouterr()
    return done.value.code, out.out + out.err


def test_cli_writes_every_output_and_exits_1_on_a_regression(
    tiny: Path, report: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    baseline = tmp_path / "baseline.json"
    write_json(_scaled(report, 1e-3), baseline, overwrite=False)  # an impossibly fast earlier run
    code, out = _cli(
        monkeypatch,
        capsys,
        "model",
        str(tiny),
        "--backend",
        "ort-cpu,trt-int8",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--json",
        str(tmp_path / "r.json"),
        "--md",
        str(tmp_path / "r.md"),
        "--png",
        str(tmp_path / "r.png"),
        "--compare",
        str(baseline),
    )
    assert code == 1, out
    assert "REGRESSION" in out and "trt-int8" in out
    validate(json.loads((tmp_path / "r.json").read_text()))
    assert "| ort-cpu | 1 |" in (tmp_path / "r.md").read_text()
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args,message",
    [
        (["model", "missing.onnx"], "missing.onnx: no such model file"),
        (["model", "{tiny}", "--backend", "ort-cpu,tpu"], "--backend tpu: unknown backend"),
        (["model", "{tiny}", "--batch", "1,x"], "--batch '1,x'"),
        (["model", "{tiny}", "--iters", "0"], "--iters 0"),
        (["model", "{tiny}", "--iters", "3", "--seconds", "1"], "exactly one"),
        (["model", "{tiny}", "--json", "{existing}"], "already exists"),
        (["model", "{tiny}", "--compare", "{existing}"], "not a JSON file"),
        (["model", "{tiny}", "--regression", "lots"], "--regression 'lots'"),
        (["model", "--int8", "nothere.int8.onnx"], "--int8 nothere.int8.onnx: no such file"),
        (["model", "{existing}"], "unknown model type '.json'"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(
    args: list[str],
    message: str,
    tiny: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    existing = tmp_path / "exists.json"
    existing.write_text("not json")
    code, out = _cli(monkeypatch, capsys, *[a.format(tiny=tiny, existing=existing) for a in args])
    assert code == 2
    assert message in out and "Traceback" not in out


def test_real_windows_feed_the_batch_repeating_when_there_are_fewer() -> None:
    from cpgait.runtime.data.windows import WindowSet

    specs = CONTRACT.input_specs()
    real = np.arange(2 * 3 * 8 * 17, dtype=np.float32).reshape(2, 3, 8, 17)
    windows = WindowSet({"skeleton": real}, np.array([0, 1]), "two test windows")
    feed = make_feed(specs, 5, windows)
    assert feed["skeleton"].shape == (5, 3, 8, 17) and feed["skeleton"].dtype == np.float32
    assert np.array_equal(feed["skeleton"][[0, 2, 4]], real[[0, 0, 0]])
    assert np.array_equal(feed["skeleton"][[1, 3]], real[[1, 1]])
    random = make_feed(specs, 3)
    assert random["skeleton"].shape == (3, 3, 8, 17)
    assert np.array_equal(random["skeleton"], make_feed(specs, 3)["skeleton"])  # seeded: every backend sees the same
    with pytest.raises(CpgaitError, match="no input"):
        make_feed(specs, 1, WindowSet({"gait_series": real}, np.array([0, 1]), "wrong windows"))
