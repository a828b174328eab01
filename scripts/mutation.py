"""Mutation testing of the core modules with mutmut (`make mutation`); writes docs/mutation/report.md.

mutmut derives each mutant's module name from its file path, so it needs the package laid out as it is imported
(`cpgait/runtime/...`), whereas this repository maps `cpgait.runtime` to `runtime/` (pyproject's package-dir).
This script therefore stages a copy of the package as `src/cpgait/...` plus the tests in `.cache/mutation/`, runs
`mutmut run` there on the mutants of `SCOPES` (whole modules, or the named functions of a large module) one module at
a time with that module's tests, and writes the report: score per module, survivors with their diffs, and the
survivors judged equivalent (`EQUIVALENT`) with the reason. Usage: `python scripts/mutation.py [--jobs N] [--only
features.py ...] [--report FILE]`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".cache" / "mutation"
REPORT = ROOT / "docs" / "mutation" / "report.md"

# file -> (mutmut name patterns of the mutants to run, "*" = every function; the tests that cover them)
LIVE_TESTS = "tests/runtime/live/test_pipeline.py"
SCOPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # events, their confirmation at the window's edges, the per-window scalars and symmetry indices
    "runtime/gait/features.py": (
        ("x_heel_strikes__*", "x__alternating__*", "x__confirmed__*", "x__si__*", "x_window_scalars__*"),
        ("tests/runtime/gait",),
    ),
    "runtime/gait/keypoints.py": (("*",), ("tests/runtime/gait",)),
    # the figures and thresholds (the `failures` property itself: mutmut leaves decorated functions alone)
    "calibration/gate.py": (("x_compare__*", "xǁThresholdsǁ__post_init____*"), ("tests/calibration/test_gate.py",)),
    "calibration/quantize.py": (("x_quantize__*",), ("tests/calibration/test_quantize.py",)),
    # pose post-processing
    "runtime/pose/blazepose.py": (
        ("x_alignment_roi__*", "x_weighted_nms__*", "x_refine_from*"),
        ("tests/runtime/pose/test_pose.py",),
    ),
    "runtime/live/gait_session.py": (
        ("*",),
        ("tests/runtime/live/test_gait_session.py", "tests/runtime/live/test_session_contract.py", LIVE_TESTS),
    ),
    # the bookkeeping of subjects, sessions and estimates (the threads around it are tested, not mutated)
    "runtime/live/pipeline.py": (("xǁPipelineǁ_temporal__*", "xǁPipelineǁestimate__*"), (LIVE_TESTS,)),
    "runtime/core/metrics.py": (("*",), ("tests/runtime/core/test_metrics.py", "tests/calibration/test_gate.py")),
    # early stopping: the epoch loop's bookkeeping (the best-epoch restore in `train` is a named mutant; mutating all
    # of `train`, 472 mutants that each train a model, takes hours on 2 cores)
    "training/train.py": (("xǁEpochLogǁ*",), ("tests/training/test_train.py",)),
    # the live reader's skipped-frame count
    "runtime/live/capture.py": (("xǁLiveSourceǁ__iter____*",), ("tests/runtime/live/test_capture.py",)),
    # the warm-up frames left out of the steady-state frames/s
    "bench/pipeline.py": (("x__steady_fps__*",), ("tests/bench/test_pipeline_bench.py",)),
}
# The end-to-end run on the real clip (BlazePose on 200 frames, a minute) is left out of the mutation runs: the
# fake-pose pipeline tests cover the same bookkeeping in seconds.
DESELECT = "not real_clip"
# mutant name -> why no test can kill it (the mutated program behaves identically)
EQUIVALENT: dict[str, str] = {
    "cpgait.bench.pipeline.x__steady_fps__mutmut_1": "`>` -> `>=` at WARMUP_FRAMES + 1 results: with exactly that "
    "many, the span after the warm-up is 0 and the function falls back to results / wall time, as it does unmutated",
    **{
        f"cpgait.runtime.core.metrics.x_weighted_kappa__mutmut_{n}": "kappa is 1 - sum(w * observed) / sum(w * "
        "chance) with the same weights in both sums: any positive scale of the weights (`*` for `/`, C + 1, C - 2 or "
        "a floor of 2 for C - 1) cancels"
        for n in (14, 21, 22, 23)
    },
    **{
        f"cpgait.runtime.core.metrics.x_{fn}__mutmut_{n}": "dtype float64 left out: integer counts divided with `/` "
        "give the same float64 results"
        for fn, n in (("weighted_kappa", 3), ("weighted_kappa", 5), ("per_class_f1", 3), ("per_class_f1", 5))
    },
    "cpgait.runtime.core.metrics.x_weighted_kappa__mutmut_7": "cm.shape[1] for cm.shape[0]: a confusion matrix is "
    "square (`confusion_matrix` builds C x C)",
    **{
        f"cpgait.runtime.live.pipeline.xǁPipelineǁ_temporal__mutmut_{n}": "`and`/`or` among the session, resampler "
        "and layout converter: `Pipeline.__init__` sets all three from the session or none, so every mix of them "
        "gives the same answer"
        for n in (17, 21, 22)
    },
    **{
        f"cpgait.runtime.live.pipeline.xǁPipelineǁ_temporal__mutmut_{n}": "the default of `last_timings_ns.get`: "
        "`GaitSession.push` sets both classifier keys on every push, before the pipeline reads them"
        for n in (59, 61, 64, 68, 70, 73)
    },
    "cpgait.runtime.gait.features.x__si__mutmut_16": '`float("NAN")` for `float("nan")`: Python reads both as NaN',
    "cpgait.runtime.gait.features.x_heel_strikes__mutmut_60": "dtype None for int64: NumPy makes an array of "
    "Python ints int64 on the 64-bit Linux this runs on",
    **{
        f"cpgait.calibration.quantize.x_quantize__mutmut_{n}": "the name of a scratch folder or file inside a "
        "private temporary folder: nothing else reads it"
        for n in (10, 11, 12, 16, 17, 20, 21)
    },
    **{
        f"cpgait.calibration.quantize.x_quantize__mutmut_{n}": "`if residual` always true: without residual Adds "
        "(the ort recipe) every Add is excluded by name, so listing Add among the quantized op types changes nothing"
        for n in (48, 77)
    },
    "cpgait.runtime.core.metrics.x_per_class_f1__mutmut_28": "`>= 0` for `> 0`: where the denominator is 0 so is tp, "
    "and 0/0 is NaN, the value the unmutated branch returns",
}


def module_of(path: str) -> str:
    """`runtime/gait/features.py` -> `cpgait.runtime.gait.features` (pyproject's package-dir mapping)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top, rest = path.split("/", 1)
    package = next(pkg for pkg, folder in config.items() if folder == top)
    return f"{package}.{rest[:-3].replace('/', '.')}"


def _extract(rev: str, paths: list[str], into: Path) -> None:
    archive = subprocess.run(["git", "archive", rev, *paths], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def stage(file: str, tests_rev: str | None) -> None:
    """A fresh `.cache/mutation`: the committed (HEAD) package as `src/cpgait/...`, the way it is imported, the
    tests of HEAD (or of git revision `tests_rev`, e.g. to score the tests before a change), and mutmut's
    configuration for `file`. Committed files only: edits in the work tree during a run cannot leak in."""
    shutil.rmtree(STAGE, ignore_errors=True)  # (a killed run may leave files behind: staging overwrites them)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    head = STAGE / "head"
    head.mkdir(parents=True, exist_ok=True)
    _extract("HEAD", sorted(set(package_dir.values())), head)
    for package, folder in sorted(package_dir.items()):
        shutil.copytree(head / folder, STAGE / "src" / package.replace(".", "/"), dirs_exist_ok=True)
    shutil.rmtree(head)
    _extract(tests_rev or "HEAD", ["tests"], STAGE)
    only = [f"src/{module_of(file).replace('.', '/')}.py"]
    tests = list(SCOPES[file][1])
    pytest_ini = config["tool"]["pytest"]["ini_options"]
    lines = [
        "[tool.pytest.ini_options]",
        f"markers = {json.dumps(pytest_ini['markers'])}",
        "[tool.mutmut]",
        'source_paths = ["src"]',
        f"only_mutate = {json.dumps(only)}",
        f"pytest_add_cli_args_test_selection = {json.dumps([*tests, '-k', DESELECT])}",
        'process_isolation = "forkserver"',  # the training tests use torch, which is not fork-safe
        "use_git_change_detection = false",
    ]
    (STAGE / "pyproject.toml").write_text("\n".join(lines) + "\n")
    # files some tests read from the repository's root (the tests run in .cache/mutation/mutants)
    shutil.copytree(ROOT / "bench" / "results", STAGE / "mutants" / "bench" / "results")
    assets = STAGE / "mutants" / "runtime" / "assets"  # the reference classifier the calibration tests quantize
    assets.mkdir(parents=True)
    for model in (ROOT / "runtime" / "assets").glob("reference*.onnx"):
        shutil.copy2(model, assets / model.name)
    clip = ROOT / ".cache" / "demo.mp4"
    if clip.is_file():
        (STAGE / "mutants" / ".cache").mkdir(parents=True)
        shutil.copy2(clip, STAGE / "mutants" / ".cache" / "demo.mp4")


def patterns(file: str) -> list[str]:
    """mutmut's names of the mutants in `file`'s scope."""
    return [f"{module_of(file)}.{p}" for p in SCOPES[file][0]]


def results(file: str) -> dict[str, str]:
    """{mutant name: status} for the mutants in `file`'s scope, from the staged run."""
    from mutmut.stats import status_by_exit_code

    meta = STAGE / "mutants" / "src" / (module_of(file).replace(".", "/") + ".py.meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    wanted = patterns(file)
    return {
        name: status_by_exit_code[code]
        for name, code in sorted(codes.items())
        if any(fnmatch.fnmatch(name, w) for w in wanted)
    }


def diff(name: str) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=STAGE, capture_output=True, text=True, check=False
    )
    lines = [ln for ln in shown.stdout.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
    return "\n".join(lines)


@dataclass(frozen=True)
class ScopeResult:
    """One module's run: each mutant's status, the diff of each survivor not judged equivalent, the run time."""

    statuses: dict[str, str]
    diffs: dict[str, str]
    seconds: float


def run_scope(file: str, jobs: int, tests_rev: str | None) -> ScopeResult:
    """Stage, mutate and test one module's scope with only its own tests (a run over several modules at once
    would give each mutant every test that touches its function: the metrics' mutants would train models)."""
    start = time.perf_counter()
    stage(file, tests_rev)
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *patterns(file)], cwd=STAGE, check=True
    )
    statuses = results(file)
    gaps = [n for n, s in statuses.items() if s not in ("killed", "timeout") and n not in EQUIVALENT]
    return ScopeResult(statuses, {n: diff(n) for n in gaps}, time.perf_counter() - start)


def write_report(by_file: dict[str, ScopeResult], command: str, path: Path) -> None:
    rows, survivors = [], []
    for f, result in by_file.items():
        statuses = result.statuses
        counts = {s: list(statuses.values()).count(s) for s in set(statuses.values())}
        equivalent = [n for n, s in statuses.items() if s == "survived" and n in EQUIVALENT]
        killed = counts.get("killed", 0) + counts.get("timeout", 0)
        considered = len(statuses) - len(equivalent)
        score = 100.0 * killed / considered if considered else float("nan")
        scope = "whole module" if SCOPES[f][0] == ("*",) else ", ".join(p.rstrip("_*") for p in SCOPES[f][0])
        rows.append(
            f"| {f} | {scope} | {len(statuses)} | {killed} | {counts.get('survived', 0) - len(equivalent)} | "
            f"{len(equivalent)} | {counts.get('no tests', 0)} | {score:.1f} % | {result.seconds / 60:.0f} |"
        )
        survivors += [(n, s, result.diffs[n]) for n, s in statuses.items() if n in result.diffs]
    minutes = sum(r.seconds for r in by_file.values()) / 60
    text = [
        "# Mutation testing of the core modules",
        "",
        f"Made by `{command}` (mutmut, {time.strftime('%Y-%m-%d')}, {minutes:.0f} min on this machine, one module",
        "at a time with its own tests). Score = killed (or timed out) / (mutants - survivors judged equivalent).",
        "Timeouts count as killed: the mutant made a test hang (an infinite loop), which the suite reports as a failure.",
        "",
        "| module | scope | mutants | killed | survived | equivalent | no tests | score | minutes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "## Survivors judged equivalent",
        "",
        *[f"- `{n}`: {why}" for n, why in sorted(EQUIVALENT.items())],
        "",
        "## Other survivors (gaps in the tests)",
        "",
    ]
    for name, status, shown in survivors:
        text += [f"`{name}` ({status}):", "```diff", shown, "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text).rstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--only", nargs="*", default=None, help="files (e.g. gate.py, bench/pipeline.py) to run")
    parser.add_argument("--tests-rev", default=None, help="score the tests of this git revision instead")
    parser.add_argument("--report", type=Path, default=REPORT, help="where to write the report")
    args = parser.parse_args()
    files = [f for f in SCOPES if not args.only or any(f == o or f.endswith(f"/{o}") for o in args.only)]
    unknown = [o for o in args.only or () if not any(f == o or f.endswith(f"/{o}") for f in SCOPES)]
    if unknown:
        parser.error(f"--only {unknown}: expected some of {list(SCOPES)}")
    command = " ".join(["python scripts/mutation.py", *sys.argv[1:]]) if sys.argv[1:] else "make mutation"
    done: dict[str, ScopeResult] = {}
    for file in files:  # the report is rewritten after each module: a long run that is stopped keeps what it did
        done[file] = run_scope(file, args.jobs, args.tests_rev)
        write_report(done, command, args.report)
        print(f"wrote {args.report} ({len(done)} of {len(files)} modules)", flush=True)


if __name__ == "__main__":
    main()
