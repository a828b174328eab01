"""Reports for people: the terminal table (rich) and the markdown table, from a report dict (see results.py)."""

from __future__ import annotations

import shutil

from rich.console import Console
from rich.table import Table


def _f(value: float | None, digits: int | None = None) -> str:
    """A figure with `digits` decimals, or by default enough for about four significant digits."""
    if value is None:
        return "—"
    if digits is None:
        digits = 3 if abs(value) < 10 else 2 if abs(value) < 100 else 1
    return f"{value:.{digits}f}"


def _speedup(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _machine(report: dict) -> str:
    env = report["environment"]
    cpu = env["cpu"]
    gpus = ", ".join(g["name"] for g in env["gpus"]) or "no GPU"
    load = env["load_average"]
    busy = report["cpu"]["others_percent"]
    return (
        f"{cpu['model']} ({cpu['logical_cores']} logical cores, {cpu['arch']}), {gpus}; "
        f"load average {load[0] if load else '?'} at start, other processes used {busy:.0f} % of the CPU "
        f"while measuring"
    )


def _settings(report: dict) -> str:
    s = report["settings"]
    if report["kind"] == "model":
        budget = f"{s['iters']} calls" if s["iters"] is not None else f"{s['seconds']} s"
        return (
            f"{'/'.join(map(str, s['threads']))} intra-op thread(s), warm-up {s['warmup']} calls, {budget} per "
            f"backend, batch and thread count in "
            f"{s['rounds']} interleaved rounds; {s['inputs']}"
        )
    return (
        f"source {s['source']} ({'live, paced' if s['live'] else 'file, every frame'}), pose {s['pose']}, "
        f"classifier backend {s['backend']}, {s['threads']} threads; {report['implementation']}"
    )


def _model_rows(report: dict) -> list[list[str]]:
    rows = []
    for r in report["results"]:
        if r["status"] != "ok":
            continue
        lat = r["latency"]
        rows.append(
            [
                r["backend"],
                str(r["batch"]),
                str(r["threads"] or "—"),
                _f(lat["p50_ms"]),
                _f(lat["p95_ms"]),
                _f(lat["p99_ms"]),
                _f(lat["mean_ms"]),
                str(lat["n"]),
                _f(r["throughput_per_s"], 1),
                _f(r["memory"]["peak_mb"], 0),
                f"{_speedup(r['speedup'])} vs {r['baseline']}" if r["speedup"] is not None else "—",
            ]
        )
    return rows


def not_run(report: dict) -> list[str]:
    """One line per backend (and batch, where only some batches ran) that was skipped or failed, with why."""
    lines: dict[tuple[str, str, str], list[int]] = {}
    for r in report["results"]:
        if r["status"] != "ok":
            lines.setdefault((r["backend"], r["status"], r["reason"]), []).append(r["batch"])
    every = report["settings"]["batches"]
    return [
        f"{backend} — {status}"
        + ("" if sorted(batches) == sorted(every) else f" at batch {','.join(map(str, batches))}")
        + f": {reason}"
        for (backend, status, reason), batches in lines.items()
    ]


MODEL_HEADER = [
    "backend",
    "batch",
    "threads",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "mean ms",
    "n",
    "windows/s",
    "peak RSS MiB",
    "speed-up (p50)",
]
PIPELINE_HEADER = ["stage", "p50 ms", "p95 ms", "p99 ms", "mean ms", "n frames", "ms per frame", "share"]


def _pipeline_rows(report: dict) -> list[list[str]]:
    rows = []
    for s in report["stages"]:
        lat = s["latency"]
        rows.append(
            [
                s["stage"],
                _f(lat["p50_ms"]),
                _f(lat["p95_ms"]),
                _f(lat["p99_ms"]),
                _f(lat["mean_ms"]),
                str(lat["n"]),
                _f(s["per_frame_ms"]),
                f"{100 * s['share']:.0f} %",
            ]
        )
    e2e = report["end_to_end"]["latency"]
    label = "capture-to-result (live)" if report["settings"]["live"] else "capture-to-result"
    rows.append(
        [
            label,
            _f(e2e["p50_ms"]),
            _f(e2e["p95_ms"]),
            _f(e2e["p99_ms"]),
            _f(e2e["mean_ms"]),
            str(e2e["n"]),
            _f(1000.0 / report["end_to_end"]["fps"]),
            "",
        ]
    )
    pose = report["pose_bound"]["latency"]
    rows.append(
        [
            "pose model alone (bound)",
            _f(pose["p50_ms"]),
            _f(pose["p95_ms"]),
            _f(pose["p99_ms"]),
            _f(pose["mean_ms"]),
            str(pose["n"]),
            _f(1000.0 / report["pose_bound"]["fps"]),
            "",
        ]
    )
    return rows


def _pipeline_summary(report: dict) -> str:
    e2e, bound = report["end_to_end"], report["pose_bound"]
    cpu = report["cpu"]
    passes = " / ".join(f"{v:.1f}" for v in bound["passes_fps"])
    return (
        f"end-to-end {e2e['fps']:.1f} frames/s over {e2e['frames']} frames ({e2e['dropped']} dropped); "
        f"pose model alone {bound['fps']:.1f} frames/s (faster of the passes before and after: {passes}); "
        f"efficiency {100 * report['efficiency']:.0f} % of the pose bound; CPU {cpu['process_percent']:.0f} % "
        f"(this process) / {cpu['system_percent']:.0f} % (machine) of "
        f"{report['environment']['cpu']['logical_cores']} cores"
    )


def print_report(report: dict, console: Console | None = None) -> None:
    """The terminal table."""
    console = console or Console(width=max(shutil.get_terminal_size((130, 24)).columns, 100))
    model = report["kind"] == "model"
    table = Table(title=f"cpgait-bench {report['kind']}", caption=_settings(report), caption_justify="left")
    for i, column in enumerate(MODEL_HEADER if model else PIPELINE_HEADER):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in _model_rows(report) if model else _pipeline_rows(report):
        table.add_row(*row)
    console.print(table)
    if model:
        for line in not_run(report):
            console.print(f"[yellow]not run:[/yellow] {line}", highlight=False)
    else:
        console.print(_pipeline_summary(report))
    console.print(f"[dim]{_machine(report)}[/dim]")


def to_markdown(report: dict) -> str:
    """The markdown table with the command, machine and method line above it."""
    model = report["kind"] == "model"
    header = MODEL_HEADER if model else PIPELINE_HEADER
    rows = _model_rows(report) if model else _pipeline_rows(report)
    lines = [
        f"`{report['environment']['command']}`",
        "",
        f"Machine: {_machine(report)}. Date: {report['environment']['date']}.",
        "",
        f"Method: {_settings(report)}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    if model and not_run(report):
        lines += ["", "Not run here:", ""] + [f"- {line}" for line in not_run(report)]
    if not model:
        lines += ["", _pipeline_summary(report) + "."]
        if report.get("cpu_time"):
            lines += [
                "",
                "Wall vs CPU time of the thread that ran each stage (ms, over the frames where it ran; "
                "wall above CPU = waiting for a core):",
                "",
                "| stage | wall p50 | CPU p50 | wall mean | CPU mean | n frames |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            lines += [
                f"| {c['stage']} | {_f(c['wall_p50_ms'])} | {_f(c['cpu_p50_ms'])} | {_f(c['wall_mean_ms'])} | "
                f"{_f(c['cpu_mean_ms'])} | {c['frames']} |"
                for c in report["cpu_time"]
            ]
    return "\n".join(lines) + "\n"
