"""The `cpgait` command line: one sub-command per verb.

Every command imports its implementation inside the function, so `cpgait --help` and the runtime verbs work on a
kiosk that has neither torch nor tensorrt installed.
"""

from __future__ import annotations

import sys

import typer

from cpgait import __version__
from cpgait.errors import CpgaitError

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


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and exit code 2, never a traceback."""
    try:
        app(standalone_mode=True)
    except CpgaitError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
