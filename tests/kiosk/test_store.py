"""The kiosk database: validation, round trips, schema migrations, crash recovery and backups."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from kiosk_fixtures import CLASSES, add_finished_session, new_session

from cpgait.errors import CpgaitError
from cpgait.kiosk.store import (
    FINISHED,
    INTERRUPTED,
    MIGRATIONS,
    RUNNING,
    SCHEMA_VERSION,
    Store,
    check_note,
    check_patient_id,
)


@pytest.mark.parametrize("bad", ["", " ", "-x", "Anna Smith", "a" * 41, "P/1", "<script>", "P\u00e9"])
def test_patient_ids_are_pseudonyms(bad: str) -> None:
    with pytest.raises(CpgaitError, match="patient ID"):
        check_patient_id(bad)


def test_good_patient_id_and_note() -> None:
    assert check_patient_id("  P-0042_a.b ") == "P-0042_a.b"
    assert check_note(" with orthoses\r\nleft AFO ") == "with orthoses\nleft AFO"
    with pytest.raises(CpgaitError, match="at most 500"):
        check_note("x" * 501)
    with pytest.raises(CpgaitError, match="control characters"):
        check_note("a\x00b")


def test_session_round_trip(store: Store, deployment) -> None:
    sid = add_finished_session(store, deployment, note="first <b>visit</b>")
    s = store.session(sid)
    assert s.status == FINISHED and s.note == "first <b>visit</b>" and s.ended_at is not None
    assert s.contract["class_names"] == list(CLASSES)
    assert s.model_sha256 == deployment.model_sha256 and len(s.contract_sha256) == 64
    assert s.quality["direction_changes"] == 1
    windows = store.windows(sid)
    assert [w.subject for w in windows] == [1, 1, 1, 2]
    assert windows[0].probabilities["GMFCS II"] == pytest.approx(0.7)
    assert windows[0].features["knee_peak_extension_left"] is None
    assert store.patient("P-0001").sessions == 1
    assert [p.id for p in store.patients()] == ["P-0001"]


def test_session_needs_an_existing_patient(store: Store, deployment) -> None:
    with pytest.raises(CpgaitError, match="does not exist"):
        store.start_session(new_session(deployment, "P-9"))


def test_keypoints_are_kept_only_when_given(store: Store, deployment) -> None:
    store.add_patient("P-1")
    sid = store.start_session(new_session(deployment, "P-1"))
    kp = {"time_s": np.array([0.0, 0.033]), "keypoints": np.random.default_rng(0).random((2, 33, 3), np.float32)}
    common = dict(time_s=1.0, frame=1, subject=1, probabilities=dict(zip(CLASSES, (0.25,) * 4)), valid_fraction=1.0)
    store.add_window(sid, **common, features={}, timings_ms={}, keypoints=kp)
    store.add_window(sid, **common, features={}, timings_ms={})
    with_kp, without = store.windows(sid, with_keypoints=True)
    np.testing.assert_array_equal(with_kp.keypoints["keypoints"], kp["keypoints"])
    assert without.keypoints is None
    assert store.windows(sid)[0].keypoints is None  # not loaded unless asked


def test_reopening_marks_a_running_session_interrupted_and_keeps_its_windows(tmp_path: Path, deployment) -> None:
    path = tmp_path / "kiosk.sqlite3"
    store = Store(path)
    store.add_patient("P-1")
    sid = store.start_session(new_session(deployment, "P-1"))
    store.add_window(
        sid,
        time_s=1.0,
        frame=1,
        subject=1,
        probabilities=dict(zip(CLASSES, (0.25,) * 4)),
        valid_fraction=1.0,
        features={},
        timings_ms={},
    )
    assert store.session(sid).status == RUNNING
    store.close()
    again = Store(path)
    assert again.recovered == 1
    s = again.session(sid)
    assert s.status == INTERRUPTED and "stopped during the session" in s.error
    assert len(again.windows(sid)) == 1


def test_a_version_1_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO patients(id, created_at, note) VALUES ('P-7', '2025-01-01T00:00:00Z', 'old')")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = Store(path)
    assert store.migrated_from == 1 and store.version == SCHEMA_VERSION == 2
    assert store.patient("P-7").note == "old"
    store.audit("report.pdf", "session 1", "127.0.0.1")  # a table of version 2
    assert store.audit_log()[0].action == "report.pdf"
    assert store._rows("PRAGMA journal_mode")[0]["journal_mode"] == "wal"


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(CpgaitError, match="newer than this cpgait"):
        Store(path)


def test_backup_is_a_consistent_copy_and_never_overwrites(store: Store, deployment, tmp_path: Path) -> None:
    sid = add_finished_session(store, deployment)
    out = store.backup(tmp_path / "b" / "backup.sqlite3")
    copy = Store(out)
    assert copy.session(sid).status == FINISHED and len(copy.windows(sid)) == 4
    copy.close()
    with pytest.raises(CpgaitError, match="already exists"):
        store.backup(out)
    assert not Path(str(out) + ".part").exists()


def test_finish_refuses_running(store: Store, deployment) -> None:
    store.add_patient("P-1")
    sid = store.start_session(new_session(deployment, "P-1"))
    with pytest.raises(ValueError, match="ends as one of"):
        store.finish_session(sid, RUNNING, None, {})
