"""The `cpgait` command line: one sub-command per verb.

Every command imports its implementation inside the function, so `cpgait --help` and the runtime verbs work on a
kiosk that has neither torch nor tensorrt installed.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from cpgait import __version__
from cpgait.errors import CpgaitError
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS

# The backends the kiosk verbs take, from the one registry (listing them imports neither torch nor tensorrt).
_RUNTIME_BACKENDS = ", ".join(RUNTIME_BACKENDS.names())
_POSE_HELP = (
    "blazepose (full landmark model, 33 points with feet), blazepose-lite (the same points, a smaller "
    "landmark model) or movenet (COCO-17, no feet)"
)
_POSE_MODELS_HELP = (
    "A folder holding the pose networks instead of the shipped FP32 files, under the same names (e.g. the FP16 "
    "variants `cpgait export-pose` writes, for --pose-backend ort-cuda or trt)."
)
_FPS_HELP = "A video file's true frame rate, replacing the one its container states (timestamps, cadence)."

app = typer.Typer(
    name="cpgait",
    help="Edge inference toolkit for video-based gait assessment in cerebral palsy (research use; models trained "
    "here saw synthetic data only).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


# ---- commands (each imports what it needs lazily) -------------------------------------------------------------


@app.command("train")
def train_command(
    data: str = typer.Argument(..., help="Labelled sequence files: a folder of .npz or a CSV manifest."),
    out: str = typer.Option(..., "--out", help="The checkpoint to write (.pt); rewritten after every epoch."),
    streams: str = typer.Option("fused", "--streams", help="fused, skeleton (ST-GCN only) or gait (features only)."),
    feature_joints: str = typer.Option(
        None,
        "--feature-joints",
        help="A joint ranking from `cpgait explain`: the "
        "gait features are limited to those computable from its top --top-k joints.",
    ),
    top_k: int = typer.Option(None, "--top-k", min=1, help="How many top joints of --feature-joints to use."),
    window: int = typer.Option(124, "--window", min=8, help="Window length T in frames at the model fps."),
    fps: float = typer.Option(30.0, "--fps", help="Model fps (recordings are resampled to it)."),
    stride: int = typer.Option(None, "--stride", min=1, help="Frames between window starts (default T/4)."),
    epochs: int = typer.Option(40, "--epochs", min=1, help="Most epochs (early stopping may end sooner)."),
    patience: int = typer.Option(
        10, "--patience", min=1, help="Stop after this many epochs without a better validation macro-F1."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=2, help="Windows per step."),
    lr: float = typer.Option(2e-3, "--lr", help="AdamW peak learning rate (cosine schedule)."),
    width: float = typer.Option(0.25, "--width", help="ST-GCN channel multiplier (1.0 = 64..256 channels)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, initialisation, sampling and augmentation."),
    no_augment: bool = typer.Option(False, "--no-augment", help="Train without augmentation."),
    motion: bool = typer.Option(False, "--motion", help="ST-GCN input: add joint motion (velocity) channels."),
    bones: bool = typer.Option(False, "--bones", help="ST-GCN input: add bone-vector channels."),
    init_skeleton: str = typer.Option(
        None,
        "--init-skeleton",
        help="Checkpoint whose ST-GCN initialises this model's (default with --feature-joints: the checkpoint the "
        "ranking explains, checked by its SHA-256).",
    ),
    no_init: bool = typer.Option(False, "--no-init", help="With --feature-joints: start the ST-GCN from random."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the interrupted run stored in --out (same data and options)."
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Train the severity model (subject-level split, balanced sampling, augmentation, early stopping)."""
    from cpgait.errors import check_outputs
    from cpgait.training.train import TrainConfig, baseline_of, joints_from_ranking, train

    check_outputs([data, feature_joints], [out], overwrite or resume)

    if (feature_joints is None) != (top_k is None):
        raise CpgaitError("--feature-joints and --top-k go together: a ranking file and how many of its joints")
    if init_skeleton and no_init:
        raise CpgaitError("--init-skeleton and --no-init contradict each other; give one")
    joints, provenance = joints_from_ranking(feature_joints, top_k) if feature_joints else ((), None)
    if provenance is not None and not (init_skeleton or no_init) and streams != "gait":
        init_skeleton = baseline_of(provenance)
    config = TrainConfig(
        streams=streams,
        window=window,
        fps=fps,
        stride=stride or max(1, window // 4),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        width=width,
        seed=seed,
        patience=patience,
        joints=joints,
        augment=not no_augment,
        motion=motion,
        bones=bones,
        init_skeleton=init_skeleton or "",
    )
    train(data, out, config, device=device, resume=resume, overwrite=overwrite, feature_ranking=provenance)


@app.command("evaluate")
def evaluate_command(
    checkpoint: str = typer.Argument(..., help="The checkpoint (.pt) to evaluate."),
    data: str = typer.Argument(..., help="Labelled sequence files: a folder of .npz or a CSV manifest."),
    split: str = typer.Option(
        "test", "--split", help="test / val / train (the checkpoint's own subject split) or all."
    ),
    out: str = typer.Option(None, "--out", help="Folder for evaluation.json and confusion.png (default: print only)."),
    stride: int = typer.Option(None, "--stride", min=1, help="Frames between windows (default: as trained)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files in --out."),
) -> None:
    """Window- and recording-level accuracy, macro-F1, weighted kappa and confusion matrices."""
    from pathlib import Path

    from cpgait.errors import check_outputs
    from cpgait.training.evaluate import evaluate

    if out is not None:
        files = [Path(out) / "evaluation.json", Path(out) / "confusion.png"]
        check_outputs([checkpoint, data], files, overwrite, folders=[out])

    evaluate(checkpoint, data, split=split, out=out, overwrite=overwrite, stride=stride, device=device)


@app.command("explain")
def explain_command(
    checkpoint: str = typer.Argument(..., help="A checkpoint with an ST-GCN stream (fused or skeleton)."),
    data: str = typer.Argument(..., help="Labelled sequence files: a folder of .npz or a CSV manifest."),
    out: str = typer.Option(..., "--out", help="Folder for joint_ranking.json and joint_importance.png."),
    split: str = typer.Option(
        "train",
        "--split",
        help="Whose windows: train / val / test (the checkpoint's split) "
        "or all. Default train, so choosing joints never looks at test data.",
    ),
    target: str = typer.Option("true", "--target", help="Explain the true class or the predicted class."),
    layer: int = typer.Option(
        None,
        "--layer",
        help="ST-GCN block to explain, 1-10 (default 10, the last, as the study; earlier blocks have mixed fewer "
        "joints together).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files in --out."),
) -> None:
    """Grad-CAM joint importance of the ST-GCN; writes the ranking `cpgait train --feature-joints` reads."""
    from pathlib import Path

    from cpgait.errors import check_outputs
    from cpgait.training.gradcam import explain

    files = [Path(out) / "joint_ranking.json", Path(out) / "joint_importance.png"]
    check_outputs([checkpoint, data], files, overwrite, folders=[out])

    explain(checkpoint, data, out, split=split, target=target, overwrite=overwrite, device=device, layer=layer)


@app.command("run")
def run_command(
    source: str = typer.Argument(
        ...,
        help="Video file, camera index (0 or /dev/video0), rtsp://... or http://... URL, "
        "or a GStreamer pipeline (e.g. a Jetson CSI camera; see capture.jetson_csi_pipeline).",
    ),
    model: str = typer.Option(..., "--model", help="The classifier: an ONNX file carrying its model contract."),
    pose: str = typer.Option("blazepose", "--pose", help=f"Pose model: {_POSE_HELP}."),
    backend: str = typer.Option("ort-cpu", "--backend", help=f"Classifier backend: {_RUNTIME_BACKENDS}."),
    pose_backend: str = typer.Option(None, "--pose-backend", help="Pose model backend (default: --backend)."),
    pose_models: str = typer.Option(None, "--pose-models", help=_POSE_MODELS_HELP),
    pose_threads: int = typer.Option(
        None,
        "--pose-threads",
        min=1,
        help="Intra-op threads of the pose networks (default: all of 1-2 cores, else all but one; README).",
    ),
    show: bool = typer.Option(False, "--show/--headless", help="Show the overlay in a window (q quits)."),
    out: str = typer.Option(None, "--out", help="Write the overlay video here (.mp4)."),
    events: str = typer.Option(None, "--events", help="Write JSON lines here: start, subject, window, summary."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out / --events if they exist."),
    paced: bool = typer.Option(False, "--paced", help="Replay a file at its fps as if live (newest frame only)."),
    loop: bool = typer.Option(False, "--loop", help="Replay a file endlessly at its fps (a demo, a soak test)."),
    stride: int = typer.Option(None, "--stride", min=1, help="Classify every S model frames (default T/4)."),
    max_frames: int = typer.Option(None, "--max-frames", min=1, help="Stop a file after this many frames."),
    record: str = typer.Option(
        None,
        "--record",
        help="Save the raw keypoints of every classified window in this "
        "folder (sequence files, size-bounded) to calibrate INT8 on this site's own data.",
    ),
    triton_url: str = typer.Option(
        None, "--triton-url", help="With --backend triton: the server, host:port (gRPC) or http://host:port."
    ),
    fps: float = typer.Option(None, "--fps", help=_FPS_HELP),
) -> None:
    """Camera or video -> pose -> walking subject -> gait features -> severity estimate, live.

    Exit status: 0 done, 2 a user error (nothing written), 3 the video file was truncated (outputs kept, summary
    flagged), 130 stopped by SIGINT / Ctrl-C, 143 stopped by SIGTERM (outputs finished in both cases)."""
    from cpgait.runtime.app.run import RunOptions, exit_code, format_summary, run_live

    options = RunOptions(
        source=source,
        model=model,
        pose=pose,
        backend=backend,
        pose_backend=pose_backend,
        pose_models=pose_models,
        show=show,
        out=out,
        events=events,
        overwrite=overwrite,
        paced=paced,
        stride=stride,
        max_frames=max_frames,
        record=record,
        loop=loop,
        pose_threads=pose_threads,
        triton_url=triton_url,
        fps=fps,
    )
    summary, contract = run_live(options)
    typer.echo(format_summary(summary, contract, source))
    for what, path in (("overlay", out), ("events", events), ("recorded windows", record)):
        if path:
            typer.echo(f"{what}: {path}")
    code = exit_code(summary)
    if code:
        raise typer.Exit(code)


@app.command("pose")
def pose_command(
    video: str = typer.Argument(..., help="A recording of one child walking (side view)."),
    out: str = typer.Option(..., "-o", "--out", help="The sequence file to write (.npz)."),
    pose: str = typer.Option("blazepose", "--pose", help=f"Pose model: {_POSE_HELP}."),
    backend: str = typer.Option("ort-cpu", "--backend", help=f"Pose model backend: {_RUNTIME_BACKENDS}."),
    pose_models: str = typer.Option(None, "--pose-models", help=_POSE_MODELS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    fps: float = typer.Option(None, "--fps", help=_FPS_HELP),
) -> None:
    """Video -> the walking subject's keypoint sequence (same pose and tracking stages as `cpgait run`).

    Exit status 3 (with a warning) when the video ends before the frame count its container states: the sequence of
    the frames read is written, its source note says so."""
    from cpgait.errors import check_outputs
    from cpgait.runtime.app.record import record_sequence
    from cpgait.runtime.app.run import EXIT_INCOMPLETE_SOURCE
    from cpgait.runtime.live.capture import check_fps
    from cpgait.runtime.pose.catalog import load_pose_model

    if not out.endswith(".npz"):
        raise CpgaitError(f"{out}: sequence files end in .npz")
    check_fps(fps, f"--fps for {video}")
    check_outputs([video], [out], overwrite)
    sequence, summary = record_sequence(video, load_pose_model(pose, backend, models=pose_models), fps=fps)
    path = sequence.save(out, overwrite=overwrite)
    missing = float((sequence.keypoints[..., 2] <= 0).mean())
    typer.echo(
        f"{path}: {sequence.num_frames} frames of the walking subject ({summary.frames} in the video), "
        f"layout {sequence.layout}, {sequence.fps:g} fps, {missing:.1%} of points missing"
    )
    if summary.capture.incomplete:
        typer.secho(f"warning: {video}: {summary.capture.incomplete}", fg="yellow", err=True)
        raise typer.Exit(EXIT_INCOMPLETE_SOURCE)


@app.command("batch")
def batch_command(
    source: str = typer.Argument(
        ..., help="A folder of videos or a CSV manifest (path, optional subject, label, fps: a file's true frame rate)."
    ),
    model: str = typer.Option(..., "--model", help="The classifier: an ONNX file carrying its model contract."),
    out: str = typer.Option(..., "--out", help="Results folder (reused: finished videos are skipped)."),
    pose: str = typer.Option("blazepose", "--pose", help="Pose model: blazepose or movenet."),
    backend: str = typer.Option("ort-cpu", "--backend", help=f"Pose and classifier backend: {_RUNTIME_BACKENDS}."),
    stride: int = typer.Option(None, "--stride", min=1, help="Classify every S model frames (default T/4)."),
    address: str = typer.Option(
        None, "--address", help="Ray cluster to join: auto or ray://host:10001 (default: a local Ray on this machine)."
    ),
    workers: int = typer.Option(None, "--workers", min=1, help="Pose workers (default: one per CPU of the cluster)."),
    cpus: float = typer.Option(1.0, "--cpus-per-worker", help="CPUs each worker holds (its pose threads)."),
    gpus: float = typer.Option(0.0, "--gpus-per-worker", help="GPUs each worker holds (with --backend ort-cuda/trt)."),
    retries: int = typer.Option(2, "--retries", min=0, help="Retries of a video whose worker died."),
) -> None:
    """Many videos on Ray: per video `cpgait pose`'s sequence and `cpgait run`'s events, plus summary.csv."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cpgait.batch.scheduler import PoolSettings, run_batch
    from cpgait.batch.worker import BatchSettings
    from cpgait.errors import check_outputs

    check_outputs([source, model], [], False, folders=[out])  # a results folder is reused, never replaced

    settings = BatchSettings(model=model, pose=pose, backend=backend, stride=stride)
    pool = PoolSettings(address=address, workers=workers, cpus=cpus, gpus=gpus, retries=retries)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bars:

        class Bars:
            def start(self, videos: int, frames: int) -> None:
                self.videos = bars.add_task("videos", total=videos)
                self.frames = bars.add_task("frames", total=frames)

            def advance(self, videos: int, frames: int) -> None:
                bars.advance(self.videos, videos)
                bars.advance(self.frames, frames)

        report = run_batch(source, settings, out, pool, progress=Bars())
    typer.echo(report.format())
    typer.echo(f"summary: {out}/summary.csv")


@app.command("export")
def export(
    checkpoint: str = typer.Argument(..., help="The checkpoint (.pt) to export."),
    out: str = typer.Option(..., "-o", "--out", help="The ONNX file to write (model.onnx)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 17)."),
    no_simplify: bool = typer.Option(False, "--no-simplify", help="Skip the onnxslim graph simplification."),
    data: str = typer.Option(None, "--data", help="Sequence files for the parity check (default: random windows)."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write model.fp16.onnx (FP16 inside, FP32 I/O) for GPUs."),
    triton: str = typer.Option(None, "--triton", help="Also add the model to this Triton model repository folder."),
    triton_backend: str = typer.Option(
        "onnxruntime", "--triton-backend", help="Triton backend: onnxruntime, or python (ONNX Runtime in model.py)."
    ),
    triton_engine: str = typer.Option(
        None, "--triton-engine", help="A TensorRT engine of this model (`cpgait build`): adds the plan variant."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Export a checkpoint to ONNX with its contract.

    Checks parity with PyTorch (|delta logits| <= 1e-4, same top-1).
    """
    from cpgait.errors import check_outputs
    from cpgait.export.onnx_export import export_checkpoint
    from cpgait.serve.triton_repo import TritonSettings

    check_outputs([checkpoint, data], [out], overwrite)
    serving = TritonSettings(backend=triton_backend)  # checked before the export's work
    result = export_checkpoint(
        checkpoint, out, opset=opset, simplify=not no_simplify, data=data, fp16=fp16, overwrite=overwrite
    )
    typer.echo(f"{result.path}: {result.parity.summary()}")
    if result.fp16_path and result.fp16_parity:
        typer.echo(f"{result.fp16_path}: FP16 variant, {result.fp16_parity.summary()}")
    if triton:
        from cpgait.serve.triton_repo import write_model_repository

        for version in write_model_repository(result.path, triton, serving, engine=triton_engine):
            typer.echo(f"{version}: Triton model version ({version.parent / 'config.pbtxt'})")


@app.command("export-pose")
def export_pose(
    pose: str = typer.Argument(..., help="The pose model: blazepose or blazepose-lite."),
    out: str = typer.Option(..., "-o", "--out", help="The folder to write its networks into (FP16 inside, FP32 I/O)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace networks already in the folder."),
) -> None:
    """Write FP16 variants of a pose model's networks for ONNX Runtime CUDA and TensorRT (`cpgait run --pose-models`).

    Each is compared with its FP32 original on ONNX Runtime CPU first; the CPU kiosk keeps the FP32 files."""
    from cpgait.export.pose_fp16 import export_pose_fp16

    for network in export_pose_fp16(pose, out, overwrite=overwrite):
        typer.echo(network.summary())


@app.command("calibrate")
def calibrate(
    model: str = typer.Argument(
        ...,
        help="The FP32 ONNX classifier (from `cpgait export`), or a pose model name (blazepose, blazepose-lite) "
        "with --frames: its landmark network is quantized.",
    ),
    data: str = typer.Option(None, "--data", help="Sequence files (folder or CSV manifest) to calibrate on."),
    frames: list[str] = typer.Option(
        None,
        "--frames",
        help="Videos of someone walking (repeatable): calibrate the pose model MODEL on its walker crops, gated on "
        "keypoint error (median <= 1.5 px, p95 <= 5 px at 256 px, presence decision changed on <= 1 %).",
    ),
    out: str = typer.Option(..., "-o", "--out", help="The INT8 Q/DQ ONNX to write (model.int8.onnx)."),
    method: str = typer.Option("percentile", "--method", help="Range calibration: minmax, entropy or percentile."),
    recipe: str = typer.Option(
        "ort", "--recipe", help="Q/DQ placement: ort (ONNX Runtime CPU, the kiosk) or tensorrt (for `cpgait build`)."
    ),
    windows: int = typer.Option(500, "--windows", help="Calibration windows, stratified by class."),
    min_windows: int = typer.Option(100, "--min-windows", help="Refuse to calibrate on fewer windows than this."),
    keep_float: str = typer.Option(
        "attention,head,graph,gait",
        "--keep-float",
        help="Groups kept in float: attention, head, graph, gait (comma-separated, or 'none').",
    ),
    min_agreement: float = typer.Option(0.99, "--min-agreement", help="Gate: least top-1 agreement with FP32."),
    max_f1_drop: float = typer.Option(1.0, "--max-f1-drop", help="Gate: largest macro-F1 drop in points."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Quantize to INT8 (Q/DQ, symmetric, per-channel) and gate it against FP32; OUT is written only on PASS."""
    from rich.console import Console

    if (data is None) == (not frames):
        raise CpgaitError("give --data SEQUENCES (a classifier) or --frames VIDEO (a pose model), not both or neither")
    if frames:
        from cpgait.calibration.pose_quantize import calibrate_pose
        from cpgait.calibration.quantize import QuantizeSettings

        pose_result = calibrate_pose(
            model, frames, out, QuantizeSettings(method=method, recipe=recipe), overwrite=overwrite
        )
        typer.echo(f"calibrated on {pose_result.calibration_crops} walker crops; {pose_result.gate.summary()}")
        typer.echo(f"wrote {pose_result.path}" if pose_result.path else f"{out} not written (the gate failed)")
        raise typer.Exit(0 if pose_result.path else 1)

    from cpgait.calibration.gate import Thresholds, render
    from cpgait.calibration.quantize import QuantizeSettings
    from cpgait.calibration.quantize import calibrate as run_calibration
    from cpgait.errors import check_outputs

    check_outputs([model, data], [out], overwrite)
    groups = () if keep_float.strip() in ("", "none") else tuple(g.strip() for g in keep_float.split(","))
    result = run_calibration(
        model,
        data,
        out,
        QuantizeSettings(method=method, keep_float=groups, recipe=recipe),
        windows=windows,
        minimum=min_windows,
        thresholds=Thresholds(min_agreement, max_f1_drop),
        overwrite=overwrite,
    )
    Console().print(render(result.gate))
    typer.echo(f"calibrated on {result.calibration_origin}; kept in float: {', '.join(result.float_nodes) or 'none'}")
    if not result.gate.ok:
        typer.secho(f"gate FAIL ({'; '.join(result.gate.failures)}): {out} was not written", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"gate PASS: wrote {result.path}")


@app.command("verify")
def verify(
    a: str = typer.Argument(..., help="Reference model: checkpoint (.pt), ONNX or engine (.plan)."),
    b: str = typer.Argument(..., help="Candidate model: ONNX, INT8 ONNX or engine (.plan)."),
    data: str = typer.Option(..., "--data", help="Held-out sequence files (folder or CSV manifest)."),
    windows: int = typer.Option(None, "--windows", help="At most this many windows, stratified (default: all)."),
    min_agreement: float = typer.Option(0.99, "--min-agreement", help="Least top-1 agreement of B with A."),
    max_f1_drop: float = typer.Option(1.0, "--max-f1-drop", help="Largest macro-F1 drop of B in points."),
    json_out: str = typer.Option(None, "--json", help="Also write the report as JSON here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the JSON report if it exists."),
) -> None:
    """Accuracy gate: same decisions? Agreement, accuracy, macro-F1, per-class F1, |delta logits|; Q/DQ rule check."""
    from pathlib import Path

    from rich.console import Console

    from cpgait.calibration.gate import Thresholds, render, write_json
    from cpgait.calibration.gate import verify as run_gate
    from cpgait.errors import check_outputs
    from cpgait.export.backends import BACKENDS
    from cpgait.runtime.backends.runner import Runner
    from cpgait.runtime.data.windows import load_windows

    check_outputs([a, b, data], [json_out], overwrite)

    def runner_of(path: Path) -> Runner:
        return BACKENDS.make_runner(path, BACKENDS.default_for(path))

    report = run_gate(
        a,
        b,
        runner_of,
        lambda contract: load_windows(data, contract, count=windows),
        Thresholds(min_agreement, max_f1_drop),
    )
    Console().print(render(report))
    if json_out:
        write_json(report, json_out, overwrite=True)
    if not report.ok:
        typer.secho(f"gate FAIL: {'; '.join(report.failures)}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo("gate PASS")


@app.command("build")
def build(
    model: str = typer.Argument(..., help="ONNX model: FP32, FP16 variant, INT8 Q/DQ, or a pose model."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or int8."),
    batch: str = typer.Option("1,1,8", "--batch", help="Optimisation profile min,opt,max batch sizes."),
    out: str = typer.Option(None, "--out", help="Engine folder (default: engines/ next to the model)."),
    workspace: int = typer.Option(1024, "--workspace", help="Builder workspace limit in MB."),
    data: str = typer.Option(
        None, "--data", help="Held-out sequence files: the engine is gated against ONNX Runtime on their windows."
    ),
    windows: int = typer.Option(None, "--windows", help="Gate on at most this many windows (default: all)."),
    min_agreement: float = typer.Option(0.99, "--min-agreement", help="Gate: least top-1 agreement with ONNX Runtime."),
    max_f1_drop: float = typer.Option(1.0, "--max-f1-drop", help="Gate: largest macro-F1 drop in points."),
    no_gate: bool = typer.Option(False, "--no-gate", help="Keep the engine without comparing it (not recommended)."),
    calib_cache: str = typer.Option(
        None, "--calib-cache", help="TensorRT 10 implicit INT8: calibration cache (keyed to the model and --data)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rebuild even when the cache holds this engine."),
) -> None:
    """Build a TensorRT engine for this GPU (cached by model, precision, profile and device) and gate it.

    A classifier's engine is compared with ONNX Runtime running the same ONNX on the --data windows; an engine
    outside the gate is deleted and the command exits 1. Pose models (no contract) are built but not gated.
    """
    from pathlib import Path

    from rich.console import Console

    from cpgait.runtime.backends.trt_engine import Profile, build_engine, file_sha256
    from cpgait.runtime.core.contract import ModelContract

    profile = Profile.parse(batch)
    contract = ModelContract.read_onnx(model)
    if contract is not None and not data and not no_gate:
        raise CpgaitError(
            f"{model}: pass --data with held-out sequence files: every engine is compared with ONNX Runtime "
            "before it is kept (or --no-gate to skip that check)"
        )
    calibrator = None
    if calib_cache:
        from cpgait.calibration.trt_calibrator import make_entropy_calibrator
        from cpgait.runtime.data.windows import load_windows

        calib = load_windows(data, ModelContract.from_onnx(model), count=500) if data else None
        model_sha = file_sha256(model)

        def calibrator(batch_size: int) -> object:
            return make_entropy_calibrator(calib, calib_cache, model_sha, batch=batch_size)

    folder = out or str(Path(model).parent / "engines")
    path = build_engine(
        model,
        precision,
        profile,
        folder,
        workspace_mb=workspace,
        calibrator=calibrator,
        overwrite=overwrite,
        require_contract=False,
    )
    typer.echo(f"{path} (side-car {Path(path).with_suffix('.json').name})")
    if contract is None or no_gate:
        why = "a model without a contract (pose model)" if contract is None else "--no-gate"
        typer.secho(f"not gated ({why}): compare it with `cpgait verify` before use", fg="yellow", err=True)
        return
    from cpgait.calibration.gate import Thresholds, render
    from cpgait.calibration.gate import verify as run_gate
    from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
    from cpgait.runtime.data.windows import load_windows

    report = run_gate(
        model,
        path,
        lambda p: RUNTIME_BACKENDS.make_runner(p, RUNTIME_BACKENDS.default_for(p)),
        lambda c: load_windows(data, c, count=windows),
        Thresholds(min_agreement, max_f1_drop),
    )
    Console().print(render(report))
    if not report.ok:
        for stale in (Path(path).with_suffix(".json"), Path(path)):  # side-car first: no half-kept engine
            stale.unlink(missing_ok=True)
        typer.secho(f"gate FAIL ({'; '.join(report.failures)}): {path} was deleted", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo("gate PASS")


@app.command("synth")
def synth(
    out: str = typer.Argument(..., help="Directory to write <recording_id>.npz + .truth.json files into."),
    n: int = typer.Option(200, "--n", help="Number of sequences, balanced over GMFCS I-IV (counts differ by <= 1)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (the same seed writes the same files)."),
    clean: bool = typer.Option(False, "--clean", help="Noise-free preset for validating features (conf 1, no drops)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into OUT even if it already holds sequences."),
    fps: float = typer.Option(30.0, "--fps", help="Frames per second."),
    layout: str = typer.Option("coco17_feet", "--layout", help="coco17_feet (COCO-17 + heels, toes) or coco17."),
    report: bool = typer.Option(
        False,
        "--report",
        help="Instead of walks, compare a population of N synthetic children with real children with CP: print the "
        "table and write OUT/population.md and OUT/population.png.",
    ),
) -> None:
    """Write SYNTHETIC side-view walks of children (GMFCS I-IV model) with their true gait parameters."""
    from collections import Counter
    from pathlib import Path

    from cpgait.errors import check_outputs
    from cpgait.runtime.core.sequence import GMFCS_LEVELS
    from cpgait.training.synth import write_dataset

    check_outputs([], [], overwrite, folders=[out])
    if report:
        from cpgait.training.population import write_report

        text, written = write_report(Path(out), n, seed, overwrite=overwrite)
        typer.echo(text)
        typer.echo(f"wrote {', '.join(str(p) for p in written)} (SYNTHETIC population vs published real figures)")
        return

    paths = write_dataset(Path(out), n, seed, clean=clean, overwrite=overwrite, fps=fps, layout=layout)
    levels = Counter(p.stem.split("_")[1] for p in paths)
    counts = ", ".join(f"{lvl}: {levels[lvl]}" for lvl in GMFCS_LEVELS)
    typer.echo(f"wrote {len(paths)} synthetic sequences ({counts}) with truth files to {out}")
    typer.echo("SYNTHETIC data for exercising the toolkit, not patient data")


class _ImportGroup(TyperGroup):
    """`cpgait import SRC ...` without a sub-command name means `cpgait import keypoints SRC ...`."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["keypoints", *args]
        return super().parse_args(ctx, args)


import_app = typer.Typer(
    cls=_ImportGroup,
    help="Import keypoints made elsewhere: one recording (OpenPose JSON, CSV) or a whole data set (gaitlab).",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")


@import_app.command("keypoints")
def import_keypoints(
    src: str = typer.Argument(
        ..., metavar="SRC", help="A folder of OpenPose *_keypoints.json files, or a keypoint CSV."
    ),
    out: str = typer.Option(..., "-o", "--out", help="The sequence file to write (.npz)."),
    fps: float = typer.Option(None, "--fps", help="Frames per second of the video (a CSV with time_s may omit it)."),
    fmt: str = typer.Option("auto", "--format", help="auto (folder = openpose, .csv = csv), openpose or csv."),
    layout: str = typer.Option("auto", "--layout", help="Source layout: auto, or body25/coco18 (OpenPose), any (CSV)."),
    image_size: str = typer.Option(None, "--image-size", help="WIDTHxHEIGHT of the video (default: fits the points)."),
    label: int = typer.Option(None, "--label", min=0, max=3, help="GMFCS level 0-3 (= I-IV), if known."),
    subject: str = typer.Option("", "--subject", help="Subject id (who walked; the unit of data splits)."),
    recording: str = typer.Option("", "--recording", help="Recording id (default: the source's name)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Import OpenPose JSON or per-frame CSV keypoints as a COCO-17 sequence file (feet kept when present)."""
    from pathlib import Path

    import numpy as np

    from cpgait.errors import check_outputs
    from cpgait.runtime.data.importers import import_csv, import_openpose

    source = Path(src)
    if not out.endswith(".npz"):
        raise CpgaitError(f"{out}: sequence files end in .npz")
    check_outputs([src], [out], overwrite)
    if fmt == "auto":
        fmt = "openpose" if source.is_dir() else "csv" if source.suffix.lower() == ".csv" else ""
        if not fmt:
            raise CpgaitError(f"{source}: cannot tell the format; expected a folder (OpenPose JSON) or a .csv file")
    common: dict[str, Any] = dict(
        layout=layout, image_size=_image_size(image_size), label=label, subject_id=subject, recording_id=recording
    )
    if fmt == "openpose":
        seq = import_openpose(source, fps, **common)
    elif fmt == "csv":
        seq = import_csv(source, fps, **common)
    else:
        raise CpgaitError(f"--format is {fmt!r}; expected auto, openpose or csv")
    path = seq.save(out, overwrite=overwrite)
    missing = float(np.mean(seq.keypoints[..., 2] <= 0))
    typer.echo(f"{path}: {seq.num_frames} frames, layout {seq.layout}, {seq.fps:g} fps, {missing:.1%} points missing")


@import_app.command("gaitlab")
def import_gaitlab_command(
    root: str = typer.Argument(
        None, help="The data set's folder (holding processed/video_csvs/ and processed/alldata_processed.csv)."
    ),
    out: str = typer.Option(..., "-o", "--out", help="Output folder: sequences/, manifests, import-summary.json."),
    videos: str = typer.Option(None, "--videos", help="Folder of <videoid>.csv keypoint files (instead of ROOT's)."),
    table: str = typer.Option(None, "--table", help="The lab table, alldata_processed.csv (instead of ROOT's)."),
    split_file: str = typer.Option(
        None, "--split-file", help="train_test_valid_id_split.csv (default: ROOT's, when present)."
    ),
    unlabelled: str = typer.Option(
        "skip", "--unlabelled", help="Videos without a usable GMFCS I-IV level: skip, or keep (label unknown)."
    ),
    fps: float = typer.Option(25.0, "--fps", help="Frames per second of the video CSVs (the data set's are 25)."),
    image_size: str = typer.Option(None, "--image-size", help="WIDTHxHEIGHT of the videos (default: fits the points)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into OUT even if it holds an earlier import."),
) -> None:
    """Import the Gillette CP gait video data set (Kidzinski et al. 2020; CC BY-NC, download it yourself)."""
    from cpgait.errors import check_outputs
    from cpgait.runtime.data.gaitlab import GaitlabFiles, import_gaitlab

    if unlabelled not in ("skip", "keep"):
        raise CpgaitError(f"--unlabelled is {unlabelled!r}; expected skip or keep")
    check_outputs([root, videos, table, split_file], [], overwrite, folders=[out])
    files = GaitlabFiles.locate(root, videos, table, split_file)
    size = _image_size(image_size)
    summary = import_gaitlab(files, out, unlabelled == "keep", fps=fps, image_size=size, overwrite=overwrite)
    typer.echo(summary.text())
    typer.echo(f"wrote {out}/manifest.csv and {len(summary.imported)} sequences with lab truth to {out}/sequences/")
    typer.echo("licence of the data: CC BY-NC 2.0 (non-commercial use only); keep it and models trained on it so")


def _image_size(text: str | None) -> tuple[int, int] | None:
    """--image-size WIDTHxHEIGHT -> (width, height)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise CpgaitError(f"--image-size is {text!r}; expected WIDTHxHEIGHT, e.g. 1920x1080")
    return int(parts[0]), int(parts[1])


@app.command("agreement")
def agreement_command(
    data: str = typer.Argument(..., help="Sequences with truth files: a folder of .npz + .truth.json or a manifest."),
    out: str = typer.Option(None, "-o", "--out", help="Folder for agreement.json, .md and .png (default: print)."),
    window_s: float = typer.Option(124 / 25, "--window-s", help="Window length in seconds (the paper's 124 frames)."),
    stride_s: float = typer.Option(31 / 25, "--stride-s", help="Seconds between window starts."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files in --out."),
) -> None:
    """Gait features vs truth (lab values or synthetic): r with 95% interval, MAE and bias per feature, scatter."""
    from cpgait.errors import check_outputs
    from cpgait.training.agreement import agreement

    check_outputs([data], [], overwrite, folders=[out])
    agreement(data, out, window_s=window_s, stride_s=stride_s, overwrite=overwrite)


@app.command("doctor")
def doctor_command(
    camera: list[str] = typer.Option(None, "--camera", help="A camera source to look for (repeatable)."),
    engines: list[str] = typer.Option(None, "--engines", help="Engine folders to check (default: the reference's)."),
    data_dir: str = typer.Option(".", "--data-dir", help="Where free disk space matters (the kiosk's data folder)."),
) -> None:
    """Is this device ready for the kiosk? Cameras, GPU/TensorRT, backends, engines valid here, free disk, clock."""
    from pathlib import Path

    from cpgait.doctor import FAIL, doctor
    from cpgait.kiosk.deployment import reference_model

    folders = [Path(e) for e in engines] if engines else [reference_model().parent / "engines"]
    checks = doctor(list(camera or []), folders, Path(data_dir))
    for c in checks:
        typer.echo(f"{c.level:4}  {c.name}: {c.detail}")
    if any(c.level == FAIL for c in checks):
        raise typer.Exit(1)


def _add_kiosk() -> None:
    from cpgait.kiosk.command import app as kiosk_app

    app.add_typer(kiosk_app, name="kiosk")


_add_kiosk()


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and exit code 2, never a traceback."""
    try:
        app(standalone_mode=True)
    except CpgaitError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
