"""The mutations issue 19 names, each applied to the source in turn, with the test that must kill it.

mutmut (`make mutation`) scores whole scopes; this script shows, for the plausible bugs that once survived the
suite, which test now fails on each. It edits a file, runs the test, and restores the file (also on Ctrl-C or SIGTERM).
Usage: `python scripts/named_mutants.py [--only WORD]`; exits 1 when a mutant survives.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEATURES, GATE, NMS = "runtime/gait/features.py", "calibration/gate.py", "runtime/pose/blazepose.py"
PIPELINE, TRAIN = "runtime/live/pipeline.py", "training/train.py"
FEATURE_TESTS, PIPELINE_TESTS = "tests/runtime/gait/test_features.py", "tests/runtime/live/test_pipeline.py"
TWO_SUBJECTS = f"{PIPELINE_TESTS}::test_one_subject_leaves_and_another_arrives"
EARLY_STOP = "tests/training/test_train.py::test_early_stopping_and_the_best_epoch_restore"
SI = (
    "            _si(\n"
    "                _mean([v for v, sd in zip(separation, sides) if sd == 0]),\n"
    "                _mean([v for v, sd in zip(separation, sides) if sd == 1]),\n"
    "            ),"
)

# (what, file, original text, mutated text, test)
MUTANTS: list[tuple[str, str, str, str, str]] = [
    (
        "heel strikes: sides swapped",
        FEATURES,
        "[[f, 0 if kind > 0 else 1] for f, kind in events]",
        "[[f, 1 if kind > 0 else 0] for f, kind in events]",
        f"{FEATURE_TESTS}::test_heel_strike_sides_follow_the_leading_ankle",
    ),
    (
        "symmetry index halved",
        FEATURES,
        "return abs(left - right) / mean * 100.0",
        "return abs(left - right) / mean * 50.0",
        f"{FEATURE_TESTS}::test_per_side_scalars_against_the_truth_of_an_asymmetric_walk",
    ),
    (
        "step-length symmetry index set to 0",
        FEATURES,
        SI,
        "            0.0,",
        f"{FEATURE_TESTS}::test_per_side_scalars_against_the_truth_of_an_asymmetric_walk",
    ),
    (
        "knee ROM over the window instead of per stride",
        FEATURES,
        "strides = [(a, b) for a, b in zip(strikes, strikes[1:]) if run[a] == run[b]] or [(0, len(knee) - 1)]",
        "strides = [(0, len(knee) - 1)]",
        f"{FEATURE_TESTS}::test_per_side_scalars_against_the_truth_of_an_asymmetric_walk",
    ),
    (
        "minimum knee flexion: sides swapped",
        FEATURES,
        "            low[0],\n            low[1],",
        "            low[1],\n            low[0],",
        f"{FEATURE_TESTS}::test_per_side_scalars_against_the_truth_of_an_asymmetric_walk",
    ),
    (
        "a half-seen step at the window's start counted",
        FEATURES,
        "        out = out[1:]\n",
        "        pass\n",
        f"{FEATURE_TESTS}::test_a_half_seen_step_at_the_window_edge_is_no_event",
    ),
    (
        "gate: < -> <= at the agreement threshold",
        GATE,
        "if not self.agreement >= self.thresholds.min_agreement:",
        "if not self.agreement > self.thresholds.min_agreement:",
        "tests/calibration/test_gate.py::test_the_gate_passes_at_its_exact_thresholds",
    ),
    (
        "gate: > -> >= at the F1 threshold",
        GATE,
        "self.f1_drop > self.thresholds.max_f1_drop:",
        "self.f1_drop >= self.thresholds.max_f1_drop:",
        "tests/calibration/test_gate.py::test_the_gate_passes_at_its_exact_thresholds",
    ),
    (
        "gate: the mean reported as the max |delta logits|",
        GATE,
        "max_abs_diff=float(diff.max()),",
        "max_abs_diff=float(diff.mean()),",
        "tests/calibration/test_gate.py::test_logit_differences_are_the_max_and_the_mean",
    ),
    (
        "gate: agreement over labelled windows only",
        GATE,
        "agreement=float(np.mean(pred_a == pred_b)),",
        "agreement=float(np.mean(pred_a[labelled] == pred_b[labelled])),",
        "tests/calibration/test_gate.py::test_agreement_counts_every_window_labelled_or_not",
    ),
    (
        "NMS: ascending score order",
        NMS,
        'order = np.argsort(-scores, kind="stable")',
        'order = np.argsort(scores, kind="stable")',
        "tests/runtime/pose/test_pose.py::test_weighted_nms_on_hand_worked_boxes",
    ),
    (
        "NMS: union without subtracting the intersection",
        NMS,
        "union = areas[order] + areas[top] - inter",
        "union = areas[order] + areas[top]",
        "tests/runtime/pose/test_pose.py::test_weighted_nms_on_hand_worked_boxes",
    ),
    (
        "NMS: merged score = the cluster's mean",
        NMS,
        "(float(scores[top]), (boxes",
        "(float(scores[cluster].mean()), (boxes",
        "tests/runtime/pose/test_pose.py::test_weighted_nms_on_hand_worked_boxes",
    ),
    (
        "NMS: merged at IoU equal to the threshold",
        NMS,
        "cluster = order[iou > iou_threshold]",
        "cluster = order[iou >= iou_threshold]",
        "tests/runtime/pose/test_pose.py::test_weighted_nms_merges_only_above_the_threshold",
    ),
    ("pipeline: OCCLUDED frames left out", PIPELINE, "(TRACKING, OCCLUDED)", "(TRACKING,)", TWO_SUBJECTS),
    (
        "pipeline: subjects not counted",
        PIPELINE,
        "                self.subjects += 1\n",
        "                pass\n",
        TWO_SUBJECTS,
    ),
    (
        "pipeline: no end-of-session estimate",
        PIPELINE,
        "                if self.session.window_count:",
        "                if not self.session.window_count:",
        TWO_SUBJECTS,
    ),
    (
        "pipeline: session not reset for a new subject",
        PIPELINE,
        "                self.session.reset()\n",
        "                pass\n",
        TWO_SUBJECTS,
    ),
    (
        "pipeline: resampler clock not reset for a new subject",
        PIPELINE,
        "                self.resampler.reset()\n",
        "                pass\n",
        TWO_SUBJECTS,
    ),
    (
        "pipeline: the last finished session's estimate forgotten",
        PIPELINE,
        "return current if current.windows or self.last_estimate is None else self.last_estimate",
        "return current",
        f"{PIPELINE_TESTS}::test_the_last_finished_session_stands_while_the_next_has_no_window",
    ),
    (
        "capture: skipped frames counted one too many",
        "runtime/live/capture.py",
        "self.stats.frames_skipped += frame.index - last - 1",
        "self.stats.frames_skipped += frame.index - last",
        "tests/runtime/live/test_capture.py::test_live_source_hands_the_newest_frame_and_skips_the_backlog",
    ),
    (
        "bench: warm-up results in the steady-state frames/s",
        "bench/pipeline.py",
        "span = (arrivals[-1] - arrivals[WARMUP_FRAMES]) / 1e9",
        "span = (arrivals[-1] - arrivals[0]) / 1e9",
        "tests/bench/test_pipeline_bench.py::test_steady_fps_leaves_out_the_warm_up_results",
    ),
    (
        "training: patience < -> <=",
        TRAIN,
        "self.epoch < epochs and self.stale < patience",
        "self.epoch < epochs and self.stale <= patience",
        EARLY_STOP,
    ),
    (
        "training: an equal score counts as an improvement",
        TRAIN,
        'if record["val_macro_f1"] > self.best_score:',
        'if record["val_macro_f1"] >= self.best_score:',
        EARLY_STOP,
    ),
    (
        "training: the last epoch's weights instead of the best",
        TRAIN,
        "Checkpoint(model_config, contract, best_weights, training)",
        "Checkpoint(model_config, contract, copy.deepcopy(model.state_dict()), training)",
        EARLY_STOP,
    ),
]


def check(what: str, path: str, old: str, new: str, test: str) -> bool:
    """Apply one mutation, run its test, restore the file; True when the test failed (the mutant is killed)."""
    file = ROOT / path
    original = file.read_text()
    if original.count(old) != 1:
        raise SystemExit(f"{path}: the text to mutate for {what!r} is found {original.count(old)} times, not once")
    try:
        file.write_text(original.replace(old, new))
        run = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test]
        killed = subprocess.run(run, cwd=ROOT, capture_output=True, check=False).returncode != 0
    finally:
        file.write_text(original)
    print(f"{'killed  ' if killed else 'SURVIVED'}  {what}  ({path}; {test})", flush=True)
    return killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the mutants whose description contains this word")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still restores the mutated file
    chosen = [m for m in MUTANTS if args.only.lower() in m[0].lower()]
    survivors = [m[0] for m in chosen if not check(*m)]
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} named mutants killed")
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
