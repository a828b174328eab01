"""The PNG of a report: bars on the left (per-stage stacked for a pipeline, p50 per backend for a model) and the
latency CDF on the right, both drawn from the report dict alone. matplotlib is imported here, only when asked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cpgait.errors import atomic_output, refuse_overwrite

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def save_png(report: dict, path: Path, overwrite: bool) -> None:
    refuse_overwrite(path, overwrite)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, cdf) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    if report["kind"] == "model":
        _model_bars(bars, report)
        curves = [(_label(r).replace("\n", " "), r["percentiles_ms"]) for r in report["results"] if r["status"] == "ok"]
    else:
        _stage_bars(bars, report)
        curves = [("end-to-end", report["end_to_end"]["percentiles_ms"])]
        curves += [(s["stage"], s["percentiles_ms"]) for s in report["stages"]]
    for label, points in curves:
        cdf.plot(points, [q / 100 for q in range(len(points))], label=label)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency (ms, log scale)")
    cdf.set_ylabel("fraction of calls at or below")
    cdf.set_title("latency CDF")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize="small")
    env = report["environment"]
    fig.suptitle(
        f"{env['command']}\n{env['cpu']['model']} ×{env['cpu']['logical_cores']}"
        f"{' · ' + env['gpus'][0]['name'] if env['gpus'] else ''} · {env['date']}",
        fontsize="small",
    )
    with atomic_output(path, overwrite) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _label(result: dict) -> str:
    return f"{result['backend']}\nb{result['batch']}" + (f" t{result['threads']}" if result["threads"] else "")


def _model_bars(ax: Axes, report: dict) -> None:
    measured = [r for r in report["results"] if r["status"] == "ok"]
    labels = [_label(r) for r in measured]
    p50 = [r["latency"]["p50_ms"] for r in measured]
    p95 = [r["latency"]["p95_ms"] - r["latency"]["p50_ms"] for r in measured]
    ax.bar(labels, p50, yerr=[[0] * len(p95), p95], capsize=4, color="tab:blue")
    for x, r in enumerate(measured):
        if r["speedup"] is not None:
            ax.annotate(f"{r['speedup']:.2f}×", (x, p50[x]), ha="center", va="bottom", fontsize="small")
    skipped = sorted({r["backend"] for r in report["results"] if r["status"] != "ok"})
    ax.set_ylabel("latency per call (ms): p50, whisker to p95")
    ax.set_title(
        "model latency (speed-up vs PyTorch eager above bars)"
        + (f"\nnot run: {', '.join(skipped)}" if skipped else ""),
        fontsize="small",
    )


def _stage_bars(ax: Axes, report: dict) -> None:
    """One stacked bar of the pipeline's stage cost per frame, one bar of the pose model alone, 1/fps as a line."""
    bottom = 0.0
    for stage in report["stages"]:
        ax.bar(["pipeline stages"], [stage["per_frame_ms"]], bottom=[bottom], label=stage["stage"])
        bottom += stage["per_frame_ms"]
    bound = report["pose_bound"]
    ax.bar(
        ["pose model alone"],
        [bound["latency"]["mean_ms"]],
        color="lightgray",
        hatch="//",
        label=f"pose alone ({bound['fps']:.1f} fps bound)",
    )
    e2e = report["end_to_end"]
    ax.axhline(1000.0 / e2e["fps"], color="black", linestyle="--", label=f"1 / throughput ({e2e['fps']:.1f} fps)")
    ax.set_ylabel("ms per frame (mean over all frames)")
    ax.set_title(
        "per-stage cost per frame; stages run in parallel threads,\nso the stack may exceed 1 / throughput",
        fontsize="small",
    )
    ax.legend(fontsize="x-small", loc="upper right")
