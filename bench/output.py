"""What one benchmark run hands back: the terminal table, and on request the JSON, markdown, PNG and comparison."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from cpgait.bench.compare import compare, parse_threshold, print_comparison
from cpgait.bench.report import print_report, to_markdown
from cpgait.bench.results import load_report, write_json
from cpgait.errors import CpgaitError, atomic_output, refuse_overwrite


def check_outputs(paths: list[Path | None], overwrite: bool, baseline: Path | None, regression: str, kind: str) -> None:
    """Refuse bad output paths and a bad baseline (unreadable, or of another `kind` of run) before minutes are spent
    measuring."""
    given = [p for p in paths if p is not None]
    for path in given:
        refuse_overwrite(path, overwrite)
        if path.is_dir():
            raise CpgaitError(f"{path}: is a folder; expected a file name")
    if len(set(given)) != len(given):
        raise CpgaitError("--json, --md and --png must name different files")
    parse_threshold(regression)
    if baseline is not None and load_report(baseline)["kind"] != kind:
        raise CpgaitError(f"{baseline}: a {load_report(baseline)['kind']} report; --compare needs a {kind} report")


def emit(
    report: dict,
    json_path: Path | None,
    md_path: Path | None,
    png_path: Path | None,
    baseline: Path | None,
    regression: str,
    overwrite: bool,
    console: Console | None = None,
) -> int:
    """Show and write the report; return the exit code (1 when the comparison found a regression)."""
    console = console or Console(width=max(shutil.get_terminal_size((130, 24)).columns, 100))
    print_report(report, console)
    if json_path is not None:
        write_json(report, json_path, overwrite)
        console.print(f"JSON: {json_path}")
    if md_path is not None:
        with atomic_output(md_path, overwrite) as tmp:
            tmp.write_text(to_markdown(report))
        console.print(f"markdown: {md_path}")
    if png_path is not None:
        from cpgait.bench.plot import save_png

        save_png(report, png_path, overwrite)
        console.print(f"PNG: {png_path}")
    if baseline is None:
        return 0
    threshold = parse_threshold(regression)
    rows = compare(report, load_report(baseline), threshold)
    print_comparison(rows, threshold, console)
    regressions = [r for r in rows if r.regression]
    if regressions:
        console.print(
            f"[bold red]{len(regressions)} regression(s) beyond {100 * threshold:.0f} % against {baseline}[/bold red]"
        )
        return 1
    return 0
