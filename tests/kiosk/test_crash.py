"""SIGKILL in the middle of a session: the database opens, the session is marked interrupted and every window
written before the kill is kept (with its keypoints, asked for here)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from kiosk_fixtures import DEMO_CLIP
from kiosk_server import KioskProcess

from cpgait.kiosk.store import DB_NAME, INTERRUPTED, RUNNING, Store


@pytest.mark.skipif(not DEMO_CLIP.is_file(), reason="the demo clip is missing (make .cache/demo.mp4)")
def test_sigkill_mid_session_keeps_the_windows(tmp_path: Path) -> None:
    kiosk = KioskProcess(tmp_path, DEMO_CLIP, "--keep-keypoints")
    try:
        kiosk.wait_ready()
        sid = kiosk.start_session("P-KILL", str(DEMO_CLIP))
        db = sqlite3.connect(f"file:{tmp_path / DB_NAME}?mode=ro", uri=True, timeout=5)
        seen, status = 0, None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and seen == 0:
            seen = db.execute("SELECT COUNT(*) FROM windows WHERE session_id=?", (sid,)).fetchone()[0]
            status = db.execute("SELECT status FROM sessions WHERE id=?", (sid,)).fetchone()[0]
            time.sleep(0.02)
        db.close()
        assert seen >= 1, "no window was written within 3 minutes"
        os.kill(kiosk.proc.pid, signal.SIGKILL)
        kiosk.proc.wait(timeout=10)
        assert status == RUNNING, "the session ended before it could be killed"
    finally:
        kiosk.stop()
    store = Store(tmp_path / DB_NAME)
    session = store.session(sid)
    assert session.status == INTERRUPTED and store.recovered == 1
    windows = store.windows(sid)
    assert len(windows) >= seen
    assert all(sum(w.probabilities.values()) == pytest.approx(1, abs=1e-3) for w in windows)
    first = store.windows(sid, with_keypoints=True)[0].keypoints  # --keep-keypoints: the walker's, per frame
    assert first["keypoints"].shape[1:] == (33, 3) and len(first["time_s"]) == len(first["keypoints"]) > 10
    store.close()
