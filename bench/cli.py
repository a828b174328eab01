"""The `cpgait-bench` command line."""

from __future__ import annotations

import sys

import typer

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


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        app(standalone_mode=True)
    except CpgaitError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
