"""The `cpgait-bench` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cpgait.bench.backends import TARGETS
from cpgait.errors import CpgaitError

app = typer.Typer(
    name="cpgait-bench",
    help="Latency profiling of cpgait models and of the whole pipeline, for every backend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Latency profiling of cpgait models and of the whole pipeline, for every backend."""


# ---- commands ---------------------------------------------------------------------------------------------------


@app.command()
def features(
    window: int = typer.Option(124, help="Window length T in frames."),
    fps: float = typer.Option(30.0, help="Frame rate of the stream."),
    layout: str = typer.Option("coco17", help="Keypoint layout: coco17 or coco17_feet."),
    frames: int = typer.Option(1000, help="Frames timed after a one-window warm-up."),
    seed: int = typer.Option(0, help="Seed of the synthetic walk that is streamed."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing JSON report."),
) -> None:
    """Per-frame cost of the live gait features (push, push + features, push + inputs, and the batch function
    for comparison): median/p95/p99 in µs, numpy on one thread pinned to one core, on a synthetic walk."""
    import os

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # numpy is not loaded yet: its BLAS starts with one thread
    from cpgait.bench.features import render, run_features_bench, write_json
    from cpgait.errors import refuse_overwrite

    if json_out is not None:
        refuse_overwrite(json_out, overwrite)  # before the run, not after it
    report = run_features_bench(window, fps, layout, frames, seed)
    typer.echo(render(report))
    if json_out is not None:
        write_json(report, json_out, overwrite)


_ALL_BACKENDS = ",".join(TARGETS)
_OUT = dict(
    json_out=typer.Option(None, "--json", help="Write the schema-versioned JSON report here."),
    md=typer.Option(None, "--md", help="Write the markdown table here."),
    png=typer.Option(None, "--png", help="Write the PNG (bars + latency CDF) here."),
    compare=typer.Option(None, "--compare", help="An earlier JSON report: print ratios to it, flag regressions."),
    regression=typer.Option("10%", "--regression", help="Slow-down that counts as a regression (10% or 0.1)."),
    overwrite=typer.Option(False, "--overwrite", help="Replace existing output files."),
)
_POSE_THREADS = typer.Option(
    None,
    "--pose-threads",
    min=1,
    help="Intra-op threads of the pose networks (default: all on 1-2 cores, else all but one).",
)


@app.command()
def model(
    model: str = typer.Argument(
        None,
        help="Checkpoint (.pt), ONNX (.onnx) or `reference`; siblings X.pt, X.onnx, "
        "X.int8.onnx, X.fp16.onnx in its folder are found.",
    ),
    backend: str = typer.Option(
        _ALL_BACKENDS, help="Comma-separated backends; unavailable ones are listed as skipped with the reason."
    ),
    batch: str = typer.Option("1", help="Comma-separated batch sizes, e.g. 1,4,16."),
    warmup: int = typer.Option(5, help="Untimed calls per backend and batch before timing."),
    iters: int | None = typer.Option(None, help="Timed calls per backend and batch."),
    seconds: float | None = typer.Option(None, help="Timed seconds per backend and batch (default 2)."),
    threads: str | None = typer.Option(
        None,
        help="Intra-op threads of every CPU backend, or a list (1,2: "
        "each CPU backend at each count); default: physical cores.",
    ),
    rounds: int = typer.Option(5, help="Interleaved rounds the budget is split into."),
    checkpoint: Path | None = typer.Option(None, help="Checkpoint for the PyTorch baseline."),
    onnx: Path | None = typer.Option(None, help="FP32 ONNX model."),
    int8: Path | None = typer.Option(None, help="INT8 (Q/DQ) ONNX model."),
    fp16: Path | None = typer.Option(None, help="FP16 ONNX model (ONNX Runtime CUDA)."),
    engine_dir: Path | None = typer.Option(
        None, help="Build / reuse TensorRT engines here (default: a temporary folder)."
    ),
    data: Path | None = typer.Option(
        None,
        help="Feed real windows cut from these sequence files (folder or CSV "
        "manifest) instead of seeded random inputs.",
    ),
    json_out: Path | None = _OUT["json_out"],
    md: Path | None = _OUT["md"],
    png: Path | None = _OUT["png"],
    compare: Path | None = _OUT["compare"],
    regression: str = _OUT["regression"],
    overwrite: bool = _OUT["overwrite"],
) -> None:
    """Latency p50/p95/p99, throughput and peak memory of one model on every backend, with the speed-up over
    PyTorch eager of the same checkpoint measured in the same run."""
    from cpgait.bench.backends import find_model_files, parse_backends
    from cpgait.bench.model import run_model_bench
    from cpgait.bench.output import check_outputs, emit
    from cpgait.bench.timing import Budget, default_threads, parse_ints

    chosen = parse_backends(backend)
    batches = parse_ints(batch, "--batch")
    default = None if iters is not None else 2.0  # --iters alone: no time limit; neither: 2 s
    budget = Budget(warmup, iters=iters, seconds=default if seconds is None else seconds)
    files = find_model_files(model, checkpoint=checkpoint, onnx=onnx, int8=int8, fp16=fp16)
    check_outputs([json_out, md, png], overwrite, compare, regression, "model")
    counts = parse_ints(threads, "--threads") if threads else [default_threads()]
    report = run_model_bench(
        files,
        chosen,
        batches,
        budget,
        counts,
        rounds,
        engine_dir,
        data,
        progress=lambda message: typer.echo(message, err=True),
    )
    raise typer.Exit(emit(report, json_out, md, png, compare, regression, overwrite))


@app.command()
def pipeline(
    source: str = typer.Argument(..., help="Video file, camera index, RTSP/HTTP URL or GStreamer pipeline."),
    model: str = typer.Option(..., "--model", help="The ONNX classifier (or `reference`)."),
    pose: str = typer.Option("blazepose", help="Pose model: blazepose, blazepose-lite or movenet."),
    backend: str = typer.Option(
        "ort-cpu", help="Runner for the pose models and the classifier: ort-cpu, ort-cuda or trt."
    ),
    live: bool = typer.Option(
        False,
        "--live",
        help="Replay a file paced at its fps through the live reader (frames "
        "the loop cannot keep up with are dropped).",
    ),
    frames: int | None = typer.Option(None, help="Stop after this many frames."),
    pose_threads: int | None = _POSE_THREADS,
    pose_models: str | None = typer.Option(
        None, "--pose-models", help="A folder of pose networks instead of the shipped files (`cpgait export-pose`)."
    ),
    json_out: Path | None = _OUT["json_out"],
    md: Path | None = _OUT["md"],
    png: Path | None = _OUT["png"],
    compare: Path | None = _OUT["compare"],
    regression: str = _OUT["regression"],
    overwrite: bool = _OUT["overwrite"],
) -> None:
    """Per-stage and end-to-end latency, frames/s, dropped frames and CPU use of the live loop, next to the pose
    model's own throughput bound measured in the same run."""
    from cpgait.bench.output import check_outputs, emit
    from cpgait.bench.pipeline import run_pipeline_bench

    check_outputs([json_out, md, png], overwrite, compare, regression, "pipeline")
    report = run_pipeline_bench(
        source,
        model,
        pose,
        backend,
        live,
        frames,
        progress=lambda message: typer.echo(message, err=True),
        pose_threads=pose_threads,
        pose_models=pose_models,
    )
    raise typer.Exit(emit(report, json_out, md, png, compare, regression, overwrite))


@app.command()
def soak(
    source: str = typer.Argument(..., help="Video file (replayed endlessly at its fps), camera, RTSP/HTTP URL."),
    minutes: float = typer.Option(..., "--minutes", help="How long to run the loop."),
    model: str = typer.Option("reference", "--model", help="The ONNX classifier (or `reference`)."),
    pose: str = typer.Option("blazepose", help="Pose model: blazepose or movenet."),
    backend: str = typer.Option("ort-cpu", help="Runner for the pose models and the classifier."),
    sample: float = typer.Option(10.0, "--sample", help="Seconds between samples."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report (every sample, verdicts) here."),
    png: Path | None = typer.Option(None, "--png", help="Write the plot (RSS, fds, threads, queues, latency) here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """The kiosk loop for N minutes on an endless source: RSS, descriptors, threads, queue depths and latency over
    time, with pass/fail verdicts (exit 1 when one fails)."""
    import json

    from cpgait.bench.pipeline import _classifier_path
    from cpgait.bench.soak import run_soak, save_plot
    from cpgait.errors import atomic_output, check_outputs

    classifier = str(_classifier_path(model))
    check_outputs([source, classifier], [json_out, png], overwrite)
    report = run_soak(
        source, classifier, minutes, pose, backend, sample_s=sample, progress=lambda m: typer.echo(m, err=True)
    )
    if json_out is not None:
        with atomic_output(json_out, overwrite) as tmp:
            tmp.write_text(json.dumps(report, indent=1) + "\n")
    if png is not None:
        with atomic_output(png, overwrite) as tmp:
            save_plot(report, tmp)
    failed = [name for name, v in report["verdicts"].items() if isinstance(v, dict) and not v["ok"]]
    for name, v in report["verdicts"].items():
        typer.echo(f"{name}: {v}")
    typer.echo(f"summary: {report['summary']}")
    if failed:
        typer.secho(f"soak FAIL: {', '.join(failed)}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo("soak PASS")


@app.command()
def pose(
    video: str = typer.Argument(..., help="A clip of one person walking in side view (e.g. .cache/demo.mp4)."),
    options: str = typer.Option(
        "blazepose,blazepose-lite,movenet",
        "--pose",
        help="Comma-separated pose options: names (blazepose, blazepose-lite, movenet) or BlazePose landmark "
        ".onnx files (e.g. an INT8 one). The FP32 full model (blazepose) is the reference and always runs.",
    ),
    backend: str = typer.Option("ort-cpu", help="Runner for the pose models."),
    pose_threads: int | None = _POSE_THREADS,
    json_out: Path | None = _OUT["json_out"],
    md: Path | None = _OUT["md"],
    overwrite: bool = _OUT["overwrite"],
) -> None:
    """Every pose option side by side against the FP32 full BlazePose: speed, keypoint error, walker tracking,
    cadence and knee range of motion on the clip (what accepts a pose option for the kiosk)."""
    from cpgait.bench.pose import run_pose_bench, to_markdown, write
    from cpgait.errors import refuse_overwrite

    for path in (json_out, md):
        if path is not None:
            refuse_overwrite(path, overwrite)
    names = [o.strip() for o in options.split(",") if o.strip()]
    report = run_pose_bench(video, names, backend, pose_threads, progress=lambda message: typer.echo(message, err=True))
    typer.echo(to_markdown(report))
    write(report, json_out, md, overwrite)


@app.command()
def batch(
    video: str = typer.Argument(..., help="The video to cut the clips from (e.g. .cache/demo.mp4)."),
    model: str = typer.Option(..., "--model", help="The ONNX classifier."),
    workers: str = typer.Option("1,2", "--workers", help="Worker counts, comma-separated; the first is the base."),
    clips: int = typer.Option(10, "--clips", min=1, help="How many clips."),
    frames: int = typer.Option(60, "--frames", min=8, help="Frames per clip."),
    first: int = typer.Option(0, "--first", min=0, help="Cut the clips from this frame of VIDEO on ..."),
    last: int = typer.Option(None, "--last", min=1, help="... to this one (default: its end)."),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Alternating rounds of all worker counts (median)."),
    json_out: Path | None = _OUT["json_out"],
    md: Path | None = _OUT["md"],
    overwrite: bool = _OUT["overwrite"],
) -> None:
    """Scaling of `cpgait batch` on a local Ray: the same clips through each worker count in one Ray session."""
    from cpgait.bench.batch import render, run_batch_bench, write
    from cpgait.bench.timing import parse_ints
    from cpgait.errors import refuse_overwrite

    for path in (json_out, md):
        if path is not None:
            refuse_overwrite(path, overwrite)
    report = run_batch_bench(
        video,
        model,
        parse_ints(workers, "--workers"),
        clips,
        frames,
        (first, last),
        lambda m: typer.echo(m, err=True),
        rounds,
    )
    write(report, json_out, md, overwrite)
    typer.echo(render(report))


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        app(standalone_mode=True)
    except CpgaitError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
