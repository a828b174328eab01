"""The kiosk's pages and exports through Starlette's test client, on sessions written straight into the store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from kiosk_fixtures import add_finished_session
from starlette.testclient import TestClient

from cpgait.errors import CpgaitError
from cpgait.kiosk.access import Access
from cpgait.kiosk.app import KioskConfig, create_app
from cpgait.kiosk.deployment import Deployment
from cpgait.kiosk.report import NOTICE
from cpgait.kiosk.store import Store

pypdf = pytest.importorskip("pypdf")


@pytest.fixture()
def client(store: Store, deployment, tmp_path: Path) -> TestClient:
    config = KioskConfig(data_dir=tmp_path / "data", cameras=("0",), deployment=deployment)
    with TestClient(create_app(config, store, Access(None), prepare=False)) as c:
        yield c


def _csrf(client: TestClient) -> str:
    html = client.get("/start").text
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_start_page_offers_patients_and_cameras(client: TestClient, store: Store, deployment) -> None:
    add_finished_session(store, deployment, patient="P-0042")
    r = client.get("/start")
    assert r.status_code == 200
    assert 'value="P-0042"' in r.text and '<option value="0">0</option>' in r.text
    assert NOTICE in r.text
    assert "Preparing the models (0 of 3 ready)" in r.text  # not prepared in this test: start disabled
    assert 'id="start" disabled' in r.text


def test_bad_patient_id_is_refused_with_the_reason(client: TestClient) -> None:
    r = client.post("/sessions", data={"csrf": _csrf(client), "new_patient": "Anna Smith", "camera": "0"})
    assert r.status_code == 400 and "expected 1-40 letters" in r.text


def test_unknown_camera_and_unprepared_models_are_refused(client: TestClient) -> None:
    csrf = _csrf(client)
    r = client.post("/sessions", data={"csrf": csrf, "new_patient": "P-1", "camera": "/dev/video9"})
    assert r.status_code == 400 and "expected one of 0" in r.text
    r = client.post("/sessions", data={"csrf": csrf, "new_patient": "P-1", "camera": "0"})
    assert r.status_code == 400 and "still being prepared" in r.text


def test_result_page(client: TestClient, store: Store, deployment) -> None:
    sid = add_finished_session(store, deployment, note="<script>alert(1)</script>")
    r = client.get(f"/sessions/{sid}")
    assert r.status_code == 200
    # walker 1's three windows: mean p(GMFCS II) = (0.7 + 0.6 + 0.3) / 3, two of three vote for it
    assert "GMFCS II &middot; confidence 0.36 &middot; agreement 67 % over 3 windows" in r.text
    assert "0.53" in r.text  # the mean probability of GMFCS II
    assert "cadence (steps/min)</td><td>111</td><td>110 - 112</td>" in r.text
    assert "<td>82 - 159.1 steps/min (median 121.6)<br>" in r.text  # real children with CP, for orientation
    assert "Kidzinski" in r.text and NOTICE in r.text
    assert "<svg" in r.text  # the timeline
    assert "walking direction changes</th><td>1</td>" in r.text
    assert "windows of other walkers (not counted)</th><td>1</td>" in r.text
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_missing_session_and_patient_are_404(client: TestClient) -> None:
    assert client.get("/sessions/999").status_code == 404
    assert client.get("/sessions/abc").status_code == 404
    assert client.get("/patients/P-404").status_code == 404
    assert client.get("/export/sessions.xml").status_code == 404


def test_history_lists_sessions_with_trends(client: TestClient, store: Store, deployment) -> None:
    first = add_finished_session(store, deployment, patient="P-1", cadence=100.0)
    second = add_finished_session(store, deployment, patient="P-1", cadence=120.0)
    add_finished_session(store, deployment, patient="P-2")
    r = client.get("/patients/P-1")
    assert r.status_code == 200
    assert f'href="/sessions/{first}"' in r.text and f'href="/sessions/{second}"' in r.text
    assert "/sessions/3" not in r.text  # another patient's
    assert "<td>101</td>" in r.text and "<td>121</td>" in r.text  # each session's median cadence
    assert r.text.count("<svg") == 1
    listing = client.get("/patients").text
    assert 'href="/patients/P-1"' in listing and 'href="/patients/P-2"' in listing


def test_report_pdf_has_the_session_and_is_audited(client: TestClient, store: Store, deployment) -> None:
    sid = add_finished_session(store, deployment, note="Zoë, with orthoses")
    r = client.get(f"/sessions/{sid}/report.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    for expected in ("Gait session report", "P-0001", "GMFCS II", "agreement 67%", "Zoë, with orthoses", "cadence"):
        assert expected in text, expected
    assert "not a clinical assessment" in text and "synthetic data" in text
    audit = store.audit_log()
    assert audit[0].action == "report.pdf" and f"session {sid}" in audit[0].target


def test_csv_and_json_exports(client: TestClient, store: Store, deployment) -> None:
    add_finished_session(store, deployment, patient="P-1")
    add_finished_session(store, deployment, patient="P-2")
    csv_text = client.get("/export/sessions.csv?patient=P-1").text
    lines = csv_text.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("session,patient,")
    assert ",P-1," in lines[1] and "GMFCS II" in lines[1]
    data = json.loads(client.get("/export/sessions.json").text)
    assert [s["patient"] for s in data["sessions"]] == ["P-1", "P-2"]
    assert data["sessions"][0]["cadence (steps/min)"] == 111.0 and data["notice"] == NOTICE
    assert [a.action for a in store.audit_log()] == ["sessions.json", "sessions.csv"]


def test_admin_page(client: TestClient, deployment) -> None:
    r = client.get("/admin")
    assert r.status_code == 200
    assert deployment.model_sha256 in r.text and "blazepose / ort-cpu" in r.text
    assert "free disk" in r.text and "backend ort-cpu" in r.text and "clock" in r.text
    assert "pose: blazepose_landmarks_full.onnx" in r.text
    assert "no /dev/video* device" in r.text or "/dev/video" in r.text


def test_admin_shows_the_int8_gate_report(store: Store, deployment, tmp_path: Path) -> None:
    report = tmp_path / "verify.json"
    report.write_text(json.dumps({"agreement": 0.992, "passed": True, "failures": []}))
    gated = Deployment.load(deployment.model, "blazepose", "ort-cpu", report)
    config = KioskConfig(data_dir=tmp_path, cameras=("0",), deployment=gated)
    with TestClient(create_app(config, store, Access(None), prepare=False)) as client:
        html = client.get("/admin").text
    assert '<strong id="gate">PASS</strong>' in html and "0.992" in html
    report.write_text("{not json")
    with pytest.raises(CpgaitError, match="not a readable JSON gate report"):
        Deployment.load(deployment.model, "blazepose", "ort-cpu", report)
