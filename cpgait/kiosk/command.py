"""`cpgait kiosk` (serve), `cpgait kiosk backup` and `cpgait kiosk set-pin`. Imports the web stack only inside the
commands, so `cpgait --help` works without the `kiosk` extra."""

from __future__ import annotations

from pathlib import Path

import typer

from cpgait.errors import CpgaitError

app = typer.Typer(
    help="The clinic kiosk: a local web app for walking sessions, patients' history and reports (needs the "
    "`kiosk` extra of the cpgait package).",
    invoke_without_command=True,
    no_args_is_help=False,
)

_DATA_DIR_HELP = "Where the database lives (default: the OS's per-user data folder, e.g. ~/.local/share/cpgait-kiosk)."


def data_dir_of(data_dir: str | None) -> Path:
    """The data directory: given, or the OS convention for per-user application data."""
    if data_dir:
        return Path(data_dir)
    from platformdirs import user_data_dir

    return Path(user_data_dir("cpgait-kiosk", appauthor=False))


def _require_extra() -> None:
    try:
        import fpdf  # noqa: F401
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
        import platformdirs  # noqa: F401
        import python_multipart  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CpgaitError(
            f"the kiosk needs the `kiosk` extra ({exc.name} is missing): pip install 'cpgait[kiosk]'"
        ) from None


@app.callback()
def serve(
    ctx: typer.Context,
    camera: list[str] = typer.Option(
        None,
        "--camera",
        help="A camera the start page offers (repeat for several): 0, /dev/video0, rtsp://..., a GStreamer "
        "pipeline, or a video file replayed as if live. Default: every /dev/video* device.",
    ),
    model: str = typer.Option(None, "--model", help="Classifier ONNX with its contract (default: the reference)."),
    pose: str = typer.Option("blazepose", "--pose", help="Pose model: blazepose or movenet."),
    backend: str = typer.Option("ort-cpu", "--backend", help="Pose model and classifier backend (trt on Jetson)."),
    gate_report: str = typer.Option(None, "--gate-report", help="The INT8 gate report (cpgait verify --json)."),
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on; beyond localhost needs a PIN."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to serve on."),
    target_windows: int = typer.Option(3, "--target-windows", min=1, help="Valid windows that make enough walking."),
    keep_keypoints: bool = typer.Option(False, "--keep-keypoints", help="Also store the walker's keypoints."),
    unpaced: bool = typer.Option(
        False, "--unpaced", help="Read a video-file camera as fast as it decodes (benchmarks), not at its fps."
    ),
) -> None:
    """Serve the kiosk (start page at http://HOST:PORT/)."""
    if ctx.invoked_subcommand is not None:
        return
    _require_extra()
    import glob

    import uvicorn

    from cpgait.kiosk.access import PIN_SETTING, Access, check_bind
    from cpgait.kiosk.app import KioskConfig, create_app
    from cpgait.kiosk.deployment import Deployment, reference_model
    from cpgait.kiosk.store import DB_NAME, Store

    folder = data_dir_of(data_dir)
    store = Store(folder / DB_NAME)
    pin_hash = store.setting(PIN_SETTING)
    check_bind(host, pin_hash is not None)
    deployment = Deployment.load(model or reference_model(), pose, backend, gate_report)
    config = KioskConfig(
        data_dir=folder,
        cameras=tuple(camera or sorted(glob.glob("/dev/video*"))),
        deployment=deployment,
        target_windows=target_windows,
        paced=not unpaced,
        keep_keypoints=keep_keypoints,
    )
    web = create_app(config, store, Access(pin_hash))
    if store.recovered:
        typer.echo(f"{store.recovered} session(s) interrupted by an earlier stop are marked interrupted")
    typer.echo(f"cpgait kiosk: http://{host}:{port}/  (data: {store.path})", err=True)
    # On SIGTERM, open live streams get 5 s; then the running session is stopped and saved as "stopped".
    uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5)


@app.command("backup")
def backup(
    out: str = typer.Argument(..., help="The backup file to write (a SQLite database)."),
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """A consistent copy of the kiosk database, also while the kiosk runs."""
    from cpgait.kiosk.store import DB_NAME, Store

    db = data_dir_of(data_dir) / DB_NAME
    if not db.is_file():
        raise CpgaitError(f"{db}: no kiosk database there; pass --data-dir")
    store = Store(db)
    try:
        path = store.backup(out, overwrite=overwrite)
    finally:
        store.close()
    typer.echo(f"{path}: backup of {db}")


@app.command("set-pin")
def set_pin(
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    pin: str = typer.Option(
        ..., "--pin", prompt=True, hide_input=True, confirmation_prompt=True, help="6-64 characters."
    ),
) -> None:
    """Set the PIN that every browser must enter (required to serve beyond localhost); restart the kiosk after."""
    from cpgait.kiosk.access import PIN_SETTING, hash_pin
    from cpgait.kiosk.store import DB_NAME, Store

    store = Store(data_dir_of(data_dir) / DB_NAME)
    try:
        store.set_setting(PIN_SETTING, hash_pin(pin))
    finally:
        store.close()
    typer.echo("PIN set; restart the kiosk for it to take effect")
