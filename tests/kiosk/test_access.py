"""Access: with a PIN every page and stream needs a login; cookies are HttpOnly and SameSite; forms need their
CSRF token and a same-site origin; serving beyond localhost without a PIN is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from kiosk_fixtures import add_finished_session
from starlette.routing import Route
from starlette.testclient import TestClient

from cpgait.errors import CpgaitError
from cpgait.kiosk.access import LOCKOUT_S, MAX_FAILURES, Access, check_bind, hash_pin, pin_matches
from cpgait.kiosk.app import PUBLIC, KioskConfig, create_app
from cpgait.kiosk.store import Store

PIN = "4711-0815"


@pytest.fixture()
def app(store: Store, deployment, tmp_path: Path):
    config = KioskConfig(data_dir=tmp_path / "data", cameras=("0",), deployment=deployment)
    return create_app(config, store, Access(hash_pin(PIN)), prepare=False)


def _paths(app) -> list[tuple[str, str]]:
    """Every route of the app with its parameters filled in, and its method."""
    out = []
    for route in app.routes:
        path = route.path.replace("{session_id}", "1").replace("{patient_id}", "P-0001").replace("{fmt:str}", "csv")
        if isinstance(route, Route):
            out += [(m, path) for m in sorted(route.methods - {"HEAD"})]
        else:
            out.append(("GET", path + "/kiosk.css"))
    return out


def test_every_route_needs_a_login(app, store: Store, deployment) -> None:
    add_finished_session(store, deployment)
    client = TestClient(app, follow_redirects=False)
    checked = 0
    for method, path in _paths(app):
        if path.startswith(PUBLIC):
            continue
        page = client.request(method, path, headers={"accept": "text/html"})
        data = client.request(method, path, headers={"accept": "*/*"})
        if method == "GET":
            assert page.status_code == 303 and page.headers["location"].startswith("/login?next="), path
        else:
            assert page.status_code == 401, (method, path)
        assert data.status_code == 401, (method, path)
        assert "GMFCS" not in page.text + data.text and "P-0001" not in page.text + data.text
        checked += 1
    assert checked >= 14  # the stream, the status, exports, admin and every page are among them
    assert client.get("/health").status_code == 200
    assert client.get("/static/kiosk.css").status_code == 200


def test_login_sets_a_strict_httponly_cookie_and_opens_the_pages(app, store: Store, deployment) -> None:
    sid = add_finished_session(store, deployment)
    client = TestClient(app, follow_redirects=False)
    wrong = client.post("/login", data={"pin": "000000"})
    assert wrong.status_code == 401 and "Wrong PIN" in wrong.text
    r = client.post("/login?next=/admin", data={"pin": PIN})
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "cpgait_kiosk=" in cookie
    assert client.get(f"/sessions/{sid}").status_code == 200
    assert client.get("/export/sessions.csv").status_code == 200
    open_redirect = client.post("/login?next=//evil.example/", data={"pin": PIN})
    assert open_redirect.headers["location"] == "/start"


def test_forms_need_the_csrf_token_and_a_same_site_origin(app) -> None:
    client = TestClient(app, follow_redirects=False)
    client.post("/login", data={"pin": PIN})
    html = client.get("/start").text
    csrf = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = {"new_patient": "P-1", "camera": "0"}
    assert client.post("/sessions", data=form).status_code == 403
    assert client.post("/sessions", data={**form, "csrf": "forged"}).status_code == 403
    cross = client.post("/sessions", data={**form, "csrf": csrf}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-site" in cross.text
    same = client.post("/sessions", data={**form, "csrf": csrf}, headers={"origin": "http://testserver"})
    assert same.status_code == 400 and "still being prepared" in same.text  # past the checks; models not loaded here


def test_logins_pause_after_wrong_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    access = Access(hash_pin(PIN))
    for _ in range(MAX_FAILURES):
        assert access.login("nope-nope") is None
    assert access.login(PIN) is None  # paused, even for the right PIN
    import cpgait.kiosk.access as module

    later = module.time.monotonic() + LOCKOUT_S + 1
    monkeypatch.setattr(module.time, "monotonic", lambda: later)
    assert access.login(PIN) is not None


def test_without_a_pin_localhost_gets_a_cookie_and_csrf_still_applies(store: Store, deployment, tmp_path) -> None:
    config = KioskConfig(data_dir=tmp_path, cameras=("0",), deployment=deployment)
    client = TestClient(create_app(config, store, Access(None), prepare=False), follow_redirects=False)
    r = client.get("/start")
    assert r.status_code == 200 and "HttpOnly" in r.headers["set-cookie"]
    assert client.post("/sessions", data={"new_patient": "P-1", "camera": "0"}).status_code == 403


def test_pins_and_binding() -> None:
    stored = hash_pin(PIN)
    assert stored.startswith("scrypt$") and PIN not in stored
    assert pin_matches(stored, PIN) and not pin_matches(stored, PIN + "x")
    with pytest.raises(CpgaitError, match="6 to 64"):
        hash_pin("123")
    check_bind("127.0.0.1", pin_set=False)
    check_bind("localhost", pin_set=False)
    check_bind("0.0.0.0", pin_set=True)
    for host in ("0.0.0.0", "192.168.1.20", "kiosk.local"):
        with pytest.raises(CpgaitError, match="needs a PIN"):
            check_bind(host, pin_set=False)
