"""Compare the INT8 Q/DQ recipes (`ort`, `tensorrt`) on ONNX Runtime CPU: gate figures against FP32 on held-out
windows and batch-1 median latency with 1 thread. The figures in the README ("Export, INT8 and the accuracy gate")
came from `python scripts/compare_int8_recipes.py .cache/model/data .cache/model/heldout` after the synth lines of
`make model` (SYNTHETIC data)."""

from __future__ import annotations

import collections
import sys
import time

import numpy as np

from cpgait.calibration.gate import Thresholds, compare, logits
from cpgait.calibration.qdq_rules import check_qdq_model
from cpgait.calibration.quantize import RECIPES, QuantizeSettings, quantize
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.data.windows import load_windows

MODEL = "runtime/assets/reference.onnx"


def latency_ms(model: str | bytes, feed: dict, n: int = 300) -> float:
    runner = OnnxRuntimeRunner(model, threads=1).activate()
    for _ in range(30):
        runner.infer(feed)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        runner.infer(feed)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(data: str, heldout: str) -> None:
    contract = ModelContract.from_onnx(MODEL)
    calib = load_windows(data, contract, count=500, minimum=100)
    held = load_windows(heldout, contract)
    feed = {k: v[:1] for k, v in held.inputs.items()}
    reference = logits(OnnxRuntimeRunner(MODEL, threads=1), held)
    print(f"fp32: {latency_ms(MODEL, feed):.1f} ms")
    for recipe in RECIPES:
        qdq = quantize(MODEL, calib, QuantizeSettings(recipe=recipe))
        blob = qdq.SerializeToString()
        got = logits(OnnxRuntimeRunner(blob, threads=1), held)
        report = compare(MODEL, recipe, reference, got, held, contract.class_names, Thresholds())
        ops = collections.Counter(n.op_type for n in qdq.graph.node)
        print(
            f"{recipe}: Q {ops['QuantizeLinear']} DQ {ops['DequantizeLinear']}, rules ok {check_qdq_model(qdq).ok}, "
            f"agreement {report.agreement:.4f}, macro-F1 drop {report.f1_drop:.2f} points, "
            f"max |d logits| {report.max_abs_diff:.3f}, gate {'pass' if report.ok else 'FAIL'}, "
            f"{latency_ms(blob, feed):.1f} ms"
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
