"""`cpgait-bench model`: latency, throughput and memory of one model on every backend, in one run.

All backends are activated first, then timed in interleaved rounds (the order rotates each round), so that a change
in machine load hits every backend alike and the ratios to PyTorch eager are taken under the same conditions.
Every backend gets the same seeded inputs with the shapes its model declares (only the batch dimension is free), and
each call is `runner.infer(numpy in) -> numpy out`, the way the kiosk calls it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.bench.backends import (
    ModelFiles,
    Target,
    make_backend_runner,
    synchronizer,
    unavailable,
)
from cpgait.bench.environment import CpuMeter, describe
from cpgait.bench.memory import MemoryWindow, PeakMemory
from cpgait.bench.results import SCHEMA_VERSION, BackendResult
from cpgait.bench.timing import Budget, LatencyStats, fix_threads, measure, percentiles_ms
from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.tensors import TensorSpec

if TYPE_CHECKING:
    from cpgait.runtime.data.windows import WindowSet

SEED = 0


def batch_unsupported(specs: Sequence[TensorSpec], batch: int) -> str | None:
    """Why these inputs cannot take `batch` (a model exported with a fixed batch), or None."""
    for spec in specs:
        first = spec.shape[0] if spec.shape else None
        if first is not None and first != batch:
            return f"the model's input {spec.name!r} has a fixed batch of {first}"
    return None


def make_feed(
    specs: Sequence[TensorSpec], batch: int, windows: WindowSet | None = None, seed: int = SEED
) -> dict[str, np.ndarray]:
    """Inputs of the declared shapes with the batch dimension set to `batch`: the first `batch` real windows
    (repeated when there are fewer), or seeded standard-normal values when no windows are given."""
    for spec in specs:
        if any(d is None for d in spec.shape[1:]):
            raise CpgaitError(f"input {spec.name!r} has shape {spec.shape}: only the batch dimension may be dynamic")
    if windows is not None:
        missing = sorted({s.name for s in specs} - set(windows.inputs))
        if missing:
            raise CpgaitError(f"the windows ({windows.origin}) have no input(s) {', '.join(missing)}")
        rows = np.arange(batch) % len(windows)
        return {s.name: np.ascontiguousarray(windows.inputs[s.name][rows], dtype=s.dtype) for s in specs}
    rng = np.random.default_rng(seed)
    feed = {}
    for spec in specs:
        shape = (batch, *(d or 1 for d in spec.shape[1:]))  # only the batch axis is dynamic in cpgait's models
        if np.issubdtype(spec.dtype, np.floating):
            feed[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            feed[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return feed


def _cuda_peak(backend: Target) -> tuple[Callable[[], None], Callable[[], float]] | None:
    """Reset / read torch's CUDA max-allocated counter for the PyTorch CUDA backend (other backends: None)."""
    if backend.runtime != "torch-cuda":
        return None
    import torch

    return torch.cuda.reset_peak_memory_stats, lambda: round(torch.cuda.max_memory_allocated() / 2**20, 1)


def _skipped(
    backend: Target, batch: int, reason: str, status: str = "skipped", threads: int | None = None
) -> BackendResult:
    return BackendResult(
        backend.name, backend.device, batch, status, threads=threads, reason=reason, baseline=backend.baseline
    )


@dataclass(frozen=True)
class Loaded:
    """An active runner, its thread count (None for GPU backends) and the RSS its loading added."""

    backend: Target
    threads: int | None
    runner: Runner
    load_mb: float


Key = tuple[str, "int | None", int]  # backend, threads, batch


def run_model_bench(
    files: ModelFiles,
    backends: Sequence[Target],
    batches: Sequence[int],
    budget: Budget,
    threads: Sequence[int],
    rounds: int = 5,
    engine_dir: Path | None = None,
    data: Path | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """Measure every backend at every batch size (CPU backends at every thread count); return the report.

    Inputs are real windows cut from the sequence files in `data` when given, else seeded random values.
    TensorRT engines are built into `engine_dir` (reused when already there), else into a temporary folder.
    """
    if not batches or any(b < 1 for b in batches):
        raise CpgaitError(f"--batch {','.join(map(str, batches))}: expected positive batch sizes")
    if not threads or any(t < 1 for t in threads):
        raise CpgaitError(f"--threads {','.join(map(str, threads))}: expected positive thread counts")
    contract = _contract(files)  # a file that is not a cpgait model fails here, before anything is measured
    windows = _windows(data, contract, max(batches)) if data is not None else None
    environment = describe()
    blocks = budget.split(rounds)
    results: dict[Key, BackendResult] = {}
    with tempfile.TemporaryDirectory(prefix="cpgait-engines-") as scratch:
        loaded = _load(backends, files, threads, batches, Path(engine_dir or scratch), results, progress)
    with CpuMeter() as cpu:
        for batch in batches:
            results.update(_measure_batch(loaded, batch, blocks, windows, progress))
    for entry in loaded:
        entry.runner.deactivate()
    order = {b.name: i for i, b in enumerate(backends)}
    ordered = sorted(results.values(), key=lambda r: (r.batch, r.threads or 0, order[r.backend]))
    return {
        "schema": SCHEMA_VERSION,
        "kind": "model",
        "environment": environment,
        "settings": {
            "warmup": budget.warmup,
            "iters": budget.iters,
            "seconds": budget.seconds,
            "rounds": len(blocks),
            "threads": list(threads),
            "batches": list(batches),
            "backends": [b.name for b in backends],
            "inputs": (
                f"seeded standard-normal tensors (seed {SEED}) of the model's declared input shapes"
                if windows is None
                else f"real windows: {windows.origin}"
            ),
        },
        "model": {"files": files.to_dict(), "contract": contract},
        "cpu": vars(cpu.result),
        "results": [r.to_dict() for r in _with_speedups(ordered)],
    }


def _load(
    backends: Sequence[Target],
    files: ModelFiles,
    threads: Sequence[int],
    batches: Sequence[int],
    engine_dir: Path,
    results: dict[Key, BackendResult],
    progress: Callable[[str], None],
) -> list[Loaded]:
    """Activate every backend that can run (a CPU backend once per thread count); record the others in `results`
    as skipped or failed, with why."""
    loaded = []
    for backend in backends:
        counts: list[int | None] = list(threads) if backend.threaded else [None]
        reason = unavailable(backend, files)
        if reason:
            progress(f"{backend.name}: skipped ({reason})")
            results.update({(backend.name, None, b): _skipped(backend, b, reason) for b in batches})
            continue
        for count in counts:
            progress(
                f"{backend.name}: loading {files.get(backend.artefact)}" + (f" with {count} thread(s)" if count else "")
            )
            try:
                with PeakMemory() as mem:
                    runner = make_backend_runner(backend, files, count or 1, batches, engine_dir).activate()
            except Exception as exc:  # a backend that breaks is reported as failed (with why); the others still run
                results.update(
                    {
                        (backend.name, count, b): _skipped(backend, b, f"{type(exc).__name__}: {exc}", "failed", count)
                        for b in batches
                    }
                )
                continue
            loaded.append(Loaded(backend, count, runner, mem.result.growth_mb))
    return loaded


def _measure_batch(
    loaded: list[Loaded],
    batch: int,
    blocks: list[Budget],
    windows: WindowSet | None,
    progress: Callable[[str], None],
) -> dict[Key, BackendResult]:
    """Time every loaded runner at `batch` in interleaved rounds (the order rotates each round)."""
    out: dict[Key, BackendResult] = {}
    feeds: dict[Key, dict[str, np.ndarray]] = {}
    samples: dict[Key, list[np.ndarray]] = {}
    peaks: dict[Key, list[MemoryWindow]] = {}
    cuda_peaks: dict[Key, float] = {}
    for entry in loaded:
        key = (entry.backend.name, entry.threads, batch)
        reason = batch_unsupported(entry.runner.input_specs(), batch)
        if reason:
            out[key] = _skipped(entry.backend, batch, reason, threads=entry.threads)
        else:
            feeds[key], samples[key], peaks[key] = make_feed(entry.runner.input_specs(), batch, windows), [], []
    entries = {(e.backend.name, e.threads, batch): e for e in loaded}
    for index, block in enumerate(blocks):
        live = [k for k in feeds if k not in out]
        live = live[index % len(live) :] + live[: index % len(live)] if live else live
        for key in live:
            entry = entries[key]
            backend, runner = entry.backend, entry.runner
            progress(
                f"batch {batch}, round {index + 1}/{len(blocks)}: {backend.name}"
                + (f", {entry.threads} thread(s)" if entry.threads else "")
            )
            if entry.threads:
                fix_threads(entry.threads)  # torch's (and OpenCV's) thread count is process-wide
            cuda = _cuda_peak(backend)
            if cuda:
                cuda[0]()
            feed = feeds[key]
            try:
                with PeakMemory() as mem:
                    samples[key].append(measure(lambda: runner.infer(feed), block, synchronizer(backend, runner)))
            except Exception as exc:  # keep measuring the others; this one is reported as failed, with why
                out[key] = _skipped(backend, batch, f"{type(exc).__name__}: {exc}", "failed", entry.threads)
                continue
            peaks[key].append(mem.result)
            if cuda:
                cuda_peaks[key] = max(cuda_peaks.get(key, 0.0), cuda[1]())
    for key in feeds:
        if key in out:
            continue
        entry = entries[key]
        ms = np.concatenate(samples[key]).astype(np.float64) / 1e6
        stats = LatencyStats.from_ms(ms)
        out[key] = BackendResult(
            backend=entry.backend.name,
            device=entry.backend.device,
            batch=batch,
            status="ok",
            threads=entry.threads,
            latency=stats,
            percentiles_ms=tuple(percentiles_ms(ms)),
            throughput_per_s=round(batch * 1000.0 / stats.mean_ms, 2),
            memory=max(peaks[key], key=lambda m: m.peak_mb),
            load_mb=entry.load_mb,
            cuda_max_allocated_mb=cuda_peaks.get(key),
            baseline=entry.backend.baseline,
        )
    return out


def _with_speedups(results: list[BackendResult]) -> list[BackendResult]:
    """Each measured result gets p50(baseline) / p50(result) at the same batch and thread count; None where the
    baseline was not measured."""
    p50 = {(r.backend, r.threads, r.batch): r.latency.p50_ms for r in results if r.latency is not None}
    out = []
    for r in results:
        base = p50.get((r.baseline or "", r.threads, r.batch))
        speedup = round(base / r.latency.p50_ms, 3) if r.latency is not None and r.status == "ok" and base else None
        out.append(replace(r, speedup=speedup))
    return out


def _windows(data: Path, contract: dict | None, count: int) -> WindowSet:
    """Up to `count` real windows from the sequence files in `data`, cut as the model's contract says."""
    from cpgait.runtime.core.contract import ModelContract
    from cpgait.runtime.data.windows import load_windows

    if contract is None:
        raise CpgaitError(
            f"--data {data}: cutting windows needs the model contract, which the ONNX file carries; pass --onnx too"
        )
    return load_windows(data, ModelContract.from_dict(contract), count=count)


def _contract(files: ModelFiles) -> dict | None:
    """The model contract from the ONNX metadata (layout, T, fps, features), when there is an ONNX file."""
    import json

    from cpgait.runtime.core.contract import ModelContract

    for path in (files.onnx, files.int8, files.fp16):
        if path is not None:
            return json.loads(ModelContract.from_onnx(path).to_json())
    return None
