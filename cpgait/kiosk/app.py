"""The kiosk's web app (Starlette): server-rendered pages, an MJPEG live stream, a little JavaScript for the live
numbers, every asset shipped in the package (the kiosk has no internet).

Pages: start (patient, note, camera) -> live (stream, state, numbers, progress) -> result (estimate, features with
real children's ranges, timeline, quality) ; patients -> history (sessions, trends) ; exports (PDF report, CSV and
JSON, each written to the audit log) ; admin (model, contract, INT8 gate, preparation, engines, disk, doctor).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cpgait import __version__
from cpgait.errors import CpgaitError
from cpgait.kiosk import plots
from cpgait.kiosk.access import COOKIE, SESSION_TTL_S, Access
from cpgait.kiosk.deployment import Deployment, Preparation
from cpgait.kiosk.real_gait import SOURCE as REAL_GAIT_SOURCE
from cpgait.kiosk.report import notice_for, session_pdf
from cpgait.kiosk.results import quality_rows, session_result
from cpgait.kiosk.sessions import SessionRunner
from cpgait.kiosk.store import NOTE_MAX, RUNNING, NewSession, Store, check_note, check_patient_id

PUBLIC = ("/login", "/static/", "/health")
STATIC = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class KioskConfig:
    """How `cpgait kiosk` was started."""

    data_dir: Path
    cameras: tuple[str, ...]
    deployment: Deployment
    target_windows: int = 3
    paced: bool = True  # a video file used as the camera is replayed at its frame rate, as a camera would deliver
    keep_keypoints: bool = False

    def __post_init__(self) -> None:
        if not self.cameras:
            raise CpgaitError("no camera: pass --camera SOURCE (a device such as 0 or /dev/video0, a URL or a file)")
        if self.target_windows < 1:
            raise CpgaitError(f"--target-windows {self.target_windows}; expected at least 1")


class Kiosk:
    """The app's state: the database, access control, the model preparation and the running session."""

    def __init__(self, config: KioskConfig, store: Store, access: Access) -> None:
        self.config = config
        self.store = store
        self.access = access
        self.preparation = Preparation(config.deployment)
        self.runners: dict[int, SessionRunner] = {}
        self._lock = threading.Lock()

    def running(self) -> SessionRunner | None:
        with self._lock:
            return next((r for r in self.runners.values() if r.running), None)

    def start_session(self, patient_id: str, note: str, camera: str) -> int:
        from cpgait.runtime.app.run import RunOptions

        d = self.config.deployment
        patient_id, note = check_patient_id(patient_id), check_note(note)
        if camera not in self.config.cameras:
            raise CpgaitError(f"camera {camera!r}; expected one of {', '.join(self.config.cameras)}")
        if not self.preparation.ready:
            raise CpgaitError(self.preparation.failed or "the models are still being prepared; see the admin page")
        with self._lock:
            if any(r.running for r in self.runners.values()):
                raise CpgaitError("a session is already running; finish it first")
            self.store.add_patient(patient_id)
            session_id = self.store.start_session(
                NewSession(
                    patient_id=patient_id,
                    note=note,
                    camera=camera,
                    model=str(d.model),
                    model_sha256=d.model_sha256,
                    contract_json=d.contract.to_json(),
                    software_version=__version__,
                    pose=d.pose,
                    backend=d.backend,
                )
            )
            options = RunOptions(
                source=camera,
                model=str(d.model),
                pose=d.pose,
                backend=d.backend,
                paced=self.config.paced,
                stop=threading.Event(),
            )
            runner = SessionRunner(
                self.store, session_id, options, self.config.target_windows, self.config.keep_keypoints
            )
            self.runners[session_id] = runner.start()
        return session_id

    def stop_all(self) -> None:
        for runner in list(self.runners.values()):
            runner.stop()
        for runner in list(self.runners.values()):
            runner.join(timeout=10)


class AccessMiddleware:
    """Every path but /login, /static and /health needs a login session (module docstring of `access`)."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookie = SimpleCookie(headers.get("cookie", ""))
        token = cookie[COOKIE].value if COOKIE in cookie else None
        csrf = self.access.csrf(token)
        new_token = None
        if csrf is None and not self.access.needs_pin:
            new_token = self.access.open_session()
            csrf = self.access.csrf(new_token)
        scope.setdefault("state", {})["csrf"] = csrf
        if csrf is None and not path.startswith(PUBLIC):
            wants_page = scope["method"] == "GET" and "text/html" in headers.get("accept", "")
            if wants_page:
                response: Response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            else:
                response = JSONResponse({"error": "login required"}, status_code=401)
            await response(scope, receive, send)
            return
        if new_token is None:
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"set-cookie", session_cookie(new_token, secure).encode("latin-1"))
                ]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def session_cookie(token: str, secure: bool) -> str:
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_TTL_S}" + (
        "; Secure" if secure else ""
    )


def create_app(config: KioskConfig, store: Store, access: Access, prepare: bool = True) -> Starlette:
    """The ASGI app; `prepare` starts loading the models at once (tests of pages alone may skip it)."""
    kiosk = Kiosk(config, store, access)
    if prepare:
        kiosk.preparation.start()
    env = Environment(loader=PackageLoader("cpgait.kiosk", "templates"), autoescape=True)
    d = config.deployment

    def page(request: Request, name: str, status_code: int = 200, **context: object) -> Response:
        defaults = {
            "request": request,
            "csrf": request.scope["state"].get("csrf"),
            "needs_pin": access.needs_pin,
            "notice": notice_for(d.contract.synthetic),
            "version": __version__,
        }
        html = env.get_template(name).render({**defaults, **context})
        return Response(html, status_code=status_code, media_type="text/html; charset=utf-8")

    def error(request: Request, message: str, status_code: int) -> Response:
        return page(request, "error.html", status_code=status_code, message=message)

    async def checked_form(request: Request) -> dict[str, str]:
        """The posted form, after the CSRF token and (when sent) the Origin header were checked."""
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise PermissionError(f"cross-site request from {origin}")
        form = await request.form()
        expected = request.scope["state"].get("csrf")
        if not expected or form.get("csrf") != expected:
            raise PermissionError("the form's CSRF token is missing or wrong; reload the page")
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def session_or_404(request: Request) -> tuple:
        try:
            session_id = int(request.path_params["session_id"])
        except ValueError:
            return None, None
        record = store.session(session_id)
        return session_id, record

    # ---- pages ----------------------------------------------------------------------------------------------

    async def home(request: Request) -> Response:
        return RedirectResponse("/start", status_code=303)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "ready": kiosk.preparation.ready})

    async def login(request: Request) -> Response:
        target = request.query_params.get("next", "/start")
        if not target.startswith("/") or target.startswith("//"):
            target = "/start"
        if request.method == "GET":
            return page(request, "login.html", next=target, failed=False)
        form = await request.form()
        token = await run_in_threadpool(access.login, str(form.get("pin", "")))
        if token is None:
            return page(request, "login.html", status_code=401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.headers.append("set-cookie", session_cookie(token, request.url.scheme == "https"))
        return response

    async def logout(request: Request) -> Response:
        try:
            await checked_form(request)
        except PermissionError as exc:
            return error(request, str(exc), 403)
        access.logout(request.cookies.get(COOKIE))
        return RedirectResponse("/login", status_code=303)

    async def start(request: Request) -> Response:
        return page(
            request,
            "start.html",
            patients=store.patients(),
            cameras=config.cameras,
            running=kiosk.running(),
            preparation=kiosk.preparation,
            note_max=NOTE_MAX,
            chosen=request.query_params.get("patient", ""),
        )

    async def new_session(request: Request) -> Response:
        try:
            form = await checked_form(request)
        except PermissionError as exc:
            return error(request, str(exc), 403)
        patient = form.get("new_patient", "").strip() or form.get("patient", "")
        try:
            session_id = await run_in_threadpool(
                kiosk.start_session, patient, form.get("note", ""), form.get("camera", "")
            )
        except CpgaitError as exc:
            return error(request, str(exc), 400)
        return RedirectResponse(f"/sessions/{session_id}/live", status_code=303)

    async def live(request: Request) -> Response:
        session_id, record = session_or_404(request)
        if record is None:
            return error(request, "no such session", 404)
        if record.status != RUNNING or session_id not in kiosk.runners:
            return RedirectResponse(f"/sessions/{session_id}", status_code=303)
        return page(request, "live.html", session=record, target=config.target_windows)

    async def status(request: Request) -> Response:
        session_id, record = session_or_404(request)
        if record is None:
            return JSONResponse({"error": "no such session"}, status_code=404)
        runner = kiosk.runners.get(session_id)
        if runner is None:
            return JSONResponse({"ended": True, "outcome": record.status, "error": record.error})
        return JSONResponse(asdict(runner.view.state()))

    async def stream(request: Request) -> Response:
        session_id, record = session_or_404(request)
        runner = kiosk.runners.get(session_id) if record is not None else None
        if runner is None:
            return JSONResponse({"error": "no live session"}, status_code=404)
        view = runner.view

        async def parts():
            seq = 0
            while not await request.is_disconnected():
                seq, jpeg = await run_in_threadpool(view.next_jpeg, seq)
                if jpeg is None:
                    if view.state().ended:
                        return
                    continue
                yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%b\r\n" % (len(jpeg), jpeg)

        return StreamingResponse(
            parts(),
            media_type="multipart/x-mixed-replace; boundary=frame",
            headers={"Cache-Control": "no-store"},
        )

    async def stop(request: Request) -> Response:
        try:
            await checked_form(request)
        except PermissionError as exc:
            return error(request, str(exc), 403)
        session_id, record = session_or_404(request)
        runner = kiosk.runners.get(session_id) if record is not None else None
        if runner is not None:
            runner.stop()
            await run_in_threadpool(runner.join, 10)
        return RedirectResponse(f"/sessions/{session_id}", status_code=303)

    async def result(request: Request) -> Response:
        session_id, record = session_or_404(request)
        if record is None:
            return error(request, "no such session", 404)
        if record.status == RUNNING and session_id in kiosk.runners:
            return RedirectResponse(f"/sessions/{session_id}/live", status_code=303)
        res = session_result(record, store.windows(session_id))
        svg = await run_in_threadpool(plots.timeline, res, "svg")
        return page(
            request,
            "result.html",
            result=res,
            quality=quality_rows(res),
            timeline=svg.decode(),
            real_source=REAL_GAIT_SOURCE,
            notice=notice_for(res.synthetic),
        )

    async def patients(request: Request) -> Response:
        return page(request, "patients.html", patients=store.patients())

    async def history(request: Request) -> Response:
        patient = store.patient(request.path_params["patient_id"])
        if patient is None:
            return error(request, "no such patient", 404)
        results = [session_result(s, store.windows(s.id)) for s in store.sessions(patient.id)]
        svg = await run_in_threadpool(plots.trends, results, "svg")
        return page(request, "history.html", patient=patient, results=results, trends=svg.decode())

    # ---- exports (audited) ----------------------------------------------------------------------------------

    async def report(request: Request) -> Response:
        session_id, record = session_or_404(request)
        if record is None:
            return error(request, "no such session", 404)
        res = session_result(record, store.windows(session_id))
        pdf = await run_in_threadpool(session_pdf, res)
        store.audit("report.pdf", f"session {session_id} of {record.patient_id}", client(request))
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="cpgait-session-{session_id}.pdf"'},
        )

    def export_rows(patient_id: str | None) -> list[dict[str, object]]:
        rows = []
        for s in store.sessions(patient_id):
            res = session_result(s, store.windows(s.id))
            est = res.estimate
            probs = dict(zip(res.class_names, est.probabilities or ())) if est else {}
            row: dict[str, object] = {
                "session": s.id,
                "patient": s.patient_id,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "status": s.status,
                "note": s.note,
                "windows": len(res.windows),
                "class": None if est is None else est.class_name,
                "confidence": None if est is None or est.confidence is None else round(est.confidence, 4),
                "agreement": None if est is None or est.agreement is None else round(est.agreement, 4),
            }
            for name in res.class_names:
                row[f"p[{name}]"] = round(probs[name], 4) if name in probs else None
            for f in res.features:
                row[f"{f.name} ({f.unit})"] = None if f.median is None else round(f.median, 4)
            row["model_sha256"] = s.model_sha256
            row["contract_sha256"] = s.contract_sha256
            row["software_version"] = s.software_version
            row["synthetic_model"] = res.synthetic
            rows.append(row)
        return rows

    async def export(request: Request) -> Response:
        fmt = request.path_params["fmt"]
        if fmt not in ("csv", "json"):
            return error(request, "not found: exports are sessions.csv or sessions.json", 404)
        patient_id = request.query_params.get("patient") or None
        if patient_id is not None and store.patient(patient_id) is None:
            return error(request, "no such patient", 404)
        rows = export_rows(patient_id)
        name = f"cpgait-sessions-{patient_id or 'all'}.{fmt}"
        store.audit(f"sessions.{fmt}", f"patient {patient_id}" if patient_id else "all patients", client(request))
        if fmt == "json":
            body = json.dumps({"notice": notice_for(d.contract.synthetic), "sessions": rows}, indent=1)
            media = "application/json"
        else:
            buf = io.StringIO()
            fields = list(dict.fromkeys(k for r in rows for k in r)) or ["session"]
            writer = csv.DictWriter(buf, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
            body, media = buf.getvalue(), "text/csv"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # ---- admin ----------------------------------------------------------------------------------------------

    async def admin(request: Request) -> Response:
        from cpgait.doctor import doctor

        folders = sorted({Path(p).parent / "engines" for p in (d.model, *kiosk.preparation.pose_models)})
        checks = await run_in_threadpool(doctor, list(config.cameras), folders, config.data_dir)
        return page(
            request,
            "admin.html",
            deployment=d,
            contract=json.loads(d.contract.to_json()),
            gate=d.gate_report,
            preparation=kiosk.preparation,
            checks=checks,
            db_path=store.path,
            db_bytes=store.size_bytes(),
            schema=store.version,
            audit=store.audit_log(50),
            config=config,
        )

    routes = [
        Route("/", home),
        Route("/health", health),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/start", start),
        Route("/sessions", new_session, methods=["POST"]),
        Route("/sessions/{session_id}/live", live),
        Route("/sessions/{session_id}/status.json", status),
        Route("/sessions/{session_id}/stream.mjpg", stream),
        Route("/sessions/{session_id}/stop", stop, methods=["POST"]),
        Route("/sessions/{session_id}", result),
        Route("/sessions/{session_id}/report.pdf", report),
        Route("/patients", patients),
        Route("/patients/{patient_id}", history),
        Route("/export/sessions.{fmt:str}", export),
        Route("/admin", admin),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(request, "not found", 404)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(kiosk.stop_all)  # a session still running ends as "stopped", its windows kept

    app = Starlette(routes=routes, exception_handlers={404: not_found}, lifespan=lifespan)
    app.state.kiosk = kiosk
    app.add_middleware(AccessMiddleware, access=access)
    return app
