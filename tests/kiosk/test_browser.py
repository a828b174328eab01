"""End to end in a real browser (Playwright driving Debian's chromium): create a patient, start a session on the
demo clip used as the camera, watch the live page update, read the result, find the session in the history, and
download the report PDF. Set CPGAIT_KIOSK_SCREENSHOTS=folder to save a screenshot of each screen (docs/kiosk/)."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from kiosk_fixtures import DEMO_CLIP
from kiosk_server import KioskProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (dev extra)")
pypdf = pytest.importorskip("pypdf")
pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(not DEMO_CLIP.is_file(), reason="the demo clip is missing (make .cache/demo.mp4)"),
]


def test_a_session_in_the_browser(tmp_path: Path) -> None:
    shots = os.environ.get("CPGAIT_KIOSK_SCREENSHOTS")
    kiosk = KioskProcess(tmp_path, DEMO_CLIP, "--target-windows", "2")
    try:
        kiosk.wait_ready()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)

            def shot(name: str) -> None:
                if shots:
                    Path(shots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)

            page.goto(kiosk.url + "/")
            assert page.title() == "Start - cpgait kiosk"
            page.fill("#new_patient", "P-0042")
            page.fill("#note", "first visit <b>not bold</b>")
            page.select_option("#camera", str(DEMO_CLIP))
            shot("start")
            page.click("#start")
            page.wait_for_url("**/sessions/1/live")
            # the live page updates: the frame counter moves and the stream shows pictures
            page.wait_for_function("Number(document.getElementById('frames').textContent) > 0", timeout=60_000)
            first = int(page.text_content("#frames"))
            page.wait_for_function(f"Number(document.getElementById('frames').textContent) > {first}", timeout=60_000)
            page.wait_for_function("document.getElementById('stream').naturalWidth > 0", timeout=30_000)
            assert page.text_content("#state") in ("searching", "tracking", "not enough walking yet", "enough walking")
            page.wait_for_function("Number(document.getElementById('windows').textContent) >= 1", timeout=180_000)
            shot("live")
            # the clip ends: the page opens the result by itself
            page.wait_for_url("**/sessions/1", timeout=180_000)
            estimate = page.text_content("#estimate")
            assert "GMFCS" in estimate and "confidence" in estimate and "agreement" in estimate
            assert page.locator("#probabilities tr").count() == 4
            features = page.text_content("#features")
            assert "cadence (steps/min)" in features and "82 - 159.1 steps/min" in features
            assert "not a clinical assessment" in page.text_content(".notice")
            assert page.locator("#timeline svg").count() == 1
            assert "frames tracked" in page.text_content("#quality")
            shot("result")
            page.click("text=P-0042")
            page.wait_for_url("**/patients/P-0042")
            rows = page.locator("#sessions tr")
            assert rows.count() == 2 and "finished" in rows.nth(1).text_content()
            assert "first visit <b>not bold</b>" in rows.nth(1).text_content()  # shown as typed, not as markup
            shot("history")
            with page.expect_download() as download:
                page.click("#sessions >> text=PDF")
            pdf = Path(download.value.path()).read_bytes()
            text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
            assert "Gait session report" in text and "P-0042" in text and "GMFCS" in text
            assert "not a clinical assessment" in text
            page.goto(kiosk.url + "/admin")
            assert "report.pdf" in page.text_content("#audit")
            shot("admin")
            browser.close()
    finally:
        kiosk.stop()
