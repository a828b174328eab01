"""`make demo` (`python -m cpgait.demo`): the kiosk loop on a real walking video with the reference model.

Input: the Sports2D demo clip (`.cache/demo.mp4`, fetched by the Makefile from the sports2d wheel, BSD-3-Clause)
and the shipped reference classifier (`runtime/assets/reference.onnx`, trained on synthetic data). It runs
`cpgait run` headless (BlazePose, ONNX Runtime on the CPU) and writes into a new folder
`out/demo/run-YYYYmmdd-HHMMSS/` of the repository (never the current directory, never over an earlier run):
overlay.mp4 (the overlay video), events.jsonl (JSON lines per window + summary) and overlay.png (one overlay
frame, mid-walk; docs/overlay.jpg in the README is such a frame, re-encoded as JPEG). Prints the summary, the
measured throughput and where the files went.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / ".cache" / "demo.mp4"
MODEL = ROOT / "runtime" / "assets" / "reference.onnx"
SNAPSHOT_S = 6.5  # the overlay frame saved as PNG: the walker mid-way, after the first window (5.9 s)


def main(argv: list[str] | None = None) -> int:
    from cpgait.errors import CpgaitError

    parser = argparse.ArgumentParser(prog="python -m cpgait.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP, help="walking video (default: the Sports2D clip)")
    parser.add_argument("--model", type=Path, default=MODEL, help="classifier ONNX (default: the reference model)")
    parser.add_argument("--pose", default="blazepose", choices=("blazepose", "movenet"))
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=ROOT / "out" / "demo",
        help="results folder (each run makes a new run-* folder in it)",
    )
    args = parser.parse_args(argv)
    try:
        return _demo(args)
    except CpgaitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    import cv2

    from cpgait.errors import CpgaitError
    from cpgait.runtime.app.run import RunOptions, format_summary, run_live
    from cpgait.runtime.live.overlay import fit_width

    if not args.clip.is_file():
        raise CpgaitError(f"{args.clip}: demo clip missing; `make .cache/demo.mp4` fetches it (sports2d wheel)")
    if not args.model.is_file():
        raise CpgaitError(f"{args.model}: reference model missing; `make model` trains and exports it")
    stamp = time.strftime("run-%Y%m%d-%H%M%S")
    run_dir = args.out_dir / stamp
    for n in range(2, 100):  # two demos started in the same second get folders of their own
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            run_dir = args.out_dir / f"{stamp}-{n}"
    snapshot = run_dir / "overlay.png"
    options = RunOptions(
        source=str(args.clip),
        model=str(args.model),
        pose=args.pose,
        out=str(run_dir / "overlay.mp4"),
        events=str(run_dir / "events.jsonl"),
    )

    def save_snapshot(report, picture) -> None:
        if picture is not None and not snapshot.exists() and report.subject.frame.timestamp >= SNAPSHOT_S:
            cv2.imwrite(str(snapshot), fit_width(picture))

    print(
        f"cpgait demo: {args.clip.name} -> {args.pose} pose -> walking subject -> gait features -> "
        f"{args.model.name} (ONNX Runtime, CPU)"
    )
    summary, contract = run_live(options, on_report=save_snapshot)
    print(format_summary(summary, contract, str(args.clip)))
    print(
        f"throughput: {summary.fps:.1f} frames/s end to end on this machine, overlay video encoding included "
        f"(the clip is {summary.frames} frames at {summary.source_fps:.3g} fps)"
    )
    print(f"overlay video: {options.out}")
    print(f"events:        {options.events}")
    if snapshot.exists():
        print(f"overlay frame: {snapshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
