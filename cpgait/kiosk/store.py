"""The kiosk's database: patients, sessions, windows, the audit log and settings in one SQLite file (WAL).

No video and no images are stored; a window's keypoints only when the kiosk is started with `--keep-keypoints`.
Patients are known by a pseudonymous ID only. Every window is committed as it comes (WAL, synchronous=FULL), so
a process killed mid-session loses nothing that was written; the next open marks such a session "interrupted".

The schema is versioned (`PRAGMA user_version`); `MIGRATIONS[i]` takes a database from version i to i + 1 and runs
in one transaction, so an old database is brought up to date when it is opened.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, atomic_output

DB_NAME = "kiosk.sqlite3"
PATIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
NOTE_MAX = 500
RUNNING, FINISHED, STOPPED, INTERRUPTED, FAILED = "running", "finished", "stopped", "interrupted", "failed"
STATUSES = (RUNNING, FINISHED, STOPPED, INTERRUPTED, FAILED)

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: patients, sessions and their windows
    """
    CREATE TABLE patients (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        patient_id TEXT NOT NULL REFERENCES patients(id),
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        camera TEXT NOT NULL,
        model TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        contract_json TEXT NOT NULL,
        contract_sha256 TEXT NOT NULL,
        software_version TEXT NOT NULL,
        pose TEXT NOT NULL,
        backend TEXT NOT NULL,
        summary_json TEXT,
        error TEXT
    );
    CREATE INDEX sessions_patient ON sessions(patient_id, started_at);
    CREATE TABLE windows (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        time_s REAL NOT NULL,
        frame INTEGER NOT NULL,
        subject INTEGER,
        probabilities_json TEXT NOT NULL,
        valid_fraction REAL NOT NULL,
        features_json TEXT NOT NULL,
        timings_json TEXT NOT NULL
    );
    CREATE INDEX windows_session ON windows(session_id, id);
    """,
    # 1 -> 2: quality counts kept while a session runs, optional keypoints, the audit log and admin settings
    """
    ALTER TABLE sessions ADD COLUMN quality_json TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE windows ADD COLUMN keypoints BLOB;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        client TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _row_id(cur: sqlite3.Cursor) -> int:
    if cur.lastrowid is None:
        raise RuntimeError("SQLite returned no row id for an insert")
    return int(cur.lastrowid)


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second (what every timestamp in the database is)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_patient_id(value: str) -> str:
    """A pseudonymous patient ID: 1-40 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    text = value.strip()
    if not PATIENT_ID.fullmatch(text):
        raise CpgaitError(
            f"patient ID {value[:60]!r}: expected 1-40 letters, digits, '.', '_' or '-' (a pseudonym, not a name), "
            "starting with a letter or digit"
        )
    return text


def check_note(value: str) -> str:
    """A free-text note of at most `NOTE_MAX` characters, without control characters other than newlines."""
    text = value.strip().replace("\r\n", "\n")
    if len(text) > NOTE_MAX:
        raise CpgaitError(f"note has {len(text)} characters; expected at most {NOTE_MAX}")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise CpgaitError("note contains control characters; expected plain text")
    return text


@dataclass(frozen=True)
class Patient:
    id: str
    created_at: str
    note: str
    sessions: int = 0
    last_session: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    """One kiosk session as stored; `summary` is the run summary (None until it ended normally)."""

    id: int
    patient_id: str
    started_at: str
    ended_at: str | None
    status: str
    note: str
    camera: str
    model: str
    model_sha256: str
    contract: dict
    contract_sha256: str
    software_version: str
    pose: str
    backend: str
    summary: dict | None
    quality: dict
    error: str | None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"session {self.id} status {self.status!r}; expected one of {STATUSES}")


@dataclass(frozen=True)
class WindowRecord:
    """One classified window of a session."""

    id: int
    session_id: int
    time_s: float
    frame: int
    subject: int | None
    probabilities: dict[str, float]
    valid_fraction: float
    features: dict[str, float | None]
    timings_ms: dict[str, float]
    keypoints: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    action: str
    target: str
    client: str


@dataclass(frozen=True)
class NewSession:
    """What a session is started with: who, where from, and exactly which model and software ran it."""

    patient_id: str
    note: str
    camera: str
    model: str
    model_sha256: str
    contract_json: str
    software_version: str
    pose: str
    backend: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "patient_id", check_patient_id(self.patient_id))
        object.__setattr__(self, "note", check_note(self.note))
        try:
            json.loads(self.contract_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"contract is not JSON ({exc})") from None


class Store:
    """The kiosk database at `path` (created and migrated on open). Thread-safe: one connection behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise CpgaitError(f"{self.path}: cannot open the kiosk database there ({exc})") from None
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.RLock()
        self.migrated_from = self._migrate()
        self.recovered = self._recover()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: tuple = ()) -> list[dict]:
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    @property
    def version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> int:
        """Bring the schema to `SCHEMA_VERSION`; returns the version found."""
        found = self.version
        if found > SCHEMA_VERSION:
            raise CpgaitError(
                f"{self.path}: database schema version {found} is newer than this cpgait's {SCHEMA_VERSION}; "
                "upgrade cpgait (never open a newer database with an older kiosk)"
            )
        for version in range(found, SCHEMA_VERSION):
            with self._tx() as db:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={version + 1}")
        return found

    def _recover(self) -> int:
        """Sessions left "running" by a process that died: marked interrupted (their windows stay)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE sessions SET status=?, ended_at=?, error=? WHERE status=?",
                (INTERRUPTED, now_iso(), "the kiosk stopped during the session", RUNNING),
            )
            return cur.rowcount

    # ---- patients -------------------------------------------------------------------------------------------

    def add_patient(self, patient_id: str, note: str = "") -> Patient:
        """The patient with this ID, created when new (an existing patient's note is kept)."""
        pid, note = check_patient_id(patient_id), check_note(note)
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO patients(id, created_at, note) VALUES (?, ?, ?)", (pid, now_iso(), note))
        patient = self.patient(pid)
        assert patient is not None
        return patient

    def patient(self, patient_id: str) -> Patient | None:
        rows = self._rows(
            "SELECT p.id, p.created_at, p.note, COUNT(s.id) AS sessions, MAX(s.started_at) AS last_session "
            "FROM patients p LEFT JOIN sessions s ON s.patient_id = p.id WHERE p.id = ? GROUP BY p.id",
            (patient_id,),
        )
        return Patient(**rows[0]) if rows else None

    def patients(self) -> list[Patient]:
        rows = self._rows(
            "SELECT p.id, p.created_at, p.note, COUNT(s.id) AS sessions, MAX(s.started_at) AS last_session "
            "FROM patients p LEFT JOIN sessions s ON s.patient_id = p.id GROUP BY p.id "
            "ORDER BY COALESCE(MAX(s.started_at), p.created_at) DESC"
        )
        return [Patient(**r) for r in rows]

    # ---- sessions -------------------------------------------------------------------------------------------

    def start_session(self, new: NewSession) -> int:
        """A new running session of an existing patient; returns its id."""
        if self.patient(new.patient_id) is None:
            raise CpgaitError(f"patient {new.patient_id!r} does not exist; create the patient first")
        contract_sha = hashlib.sha256(new.contract_json.encode()).hexdigest()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO sessions(patient_id, started_at, status, note, camera, model, model_sha256, "
                "contract_json, contract_sha256, software_version, pose, backend) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.patient_id,
                    now_iso(),
                    RUNNING,
                    new.note,
                    new.camera,
                    new.model,
                    new.model_sha256,
                    new.contract_json,
                    contract_sha,
                    new.software_version,
                    new.pose,
                    new.backend,
                ),
            )
            return _row_id(cur)

    def add_window(
        self,
        session_id: int,
        *,
        time_s: float,
        frame: int,
        subject: int | None,
        probabilities: dict[str, float],
        valid_fraction: float,
        features: dict[str, float | None],
        timings_ms: dict[str, float],
        keypoints: dict[str, np.ndarray] | None = None,
    ) -> int:
        """Append one window and commit it at once (what a crash must not lose); `keypoints` (optional) are the
        subject's keypoints since the previous window: arrays time_s `[n]` and keypoints `[n, V, 3]`."""
        blob = None
        if keypoints is not None:
            if set(keypoints) != {"time_s", "keypoints"}:
                raise ValueError(f"window keypoints have arrays {sorted(keypoints)}; expected time_s and keypoints")
            buf = io.BytesIO()
            np.savez(buf, time_s=keypoints["time_s"], keypoints=keypoints["keypoints"])
            blob = buf.getvalue()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO windows(session_id, time_s, frame, subject, probabilities_json, valid_fraction, "
                "features_json, timings_json, keypoints) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    float(time_s),
                    int(frame),
                    subject,
                    json.dumps(probabilities, allow_nan=False),
                    float(valid_fraction),
                    json.dumps(features, allow_nan=False),
                    json.dumps(timings_ms, allow_nan=False),
                    blob,
                ),
            )
            return _row_id(cur)

    def update_quality(self, session_id: int, quality: dict) -> None:
        """The running session's quality counts so far (frames tracked, occluded, direction changes)."""
        with self._tx() as db:
            db.execute("UPDATE sessions SET quality_json=? WHERE id=?", (json.dumps(quality), session_id))

    def finish_session(
        self, session_id: int, status: str, summary: dict | None, quality: dict, error: str | None = None
    ) -> None:
        if status == RUNNING or status not in STATUSES:
            raise ValueError(f"a session ends as one of {STATUSES[1:]}; got {status!r}")
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET status=?, ended_at=?, summary_json=?, quality_json=?, error=? WHERE id=?",
                (
                    status,
                    now_iso(),
                    None if summary is None else json.dumps(summary),
                    json.dumps(quality),
                    error,
                    session_id,
                ),
            )

    @staticmethod
    def _session(row: dict) -> SessionRecord:
        return SessionRecord(
            id=row["id"],
            patient_id=row["patient_id"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            status=row["status"],
            note=row["note"],
            camera=row["camera"],
            model=row["model"],
            model_sha256=row["model_sha256"],
            contract=json.loads(row["contract_json"]),
            contract_sha256=row["contract_sha256"],
            software_version=row["software_version"],
            pose=row["pose"],
            backend=row["backend"],
            summary=None if row["summary_json"] is None else json.loads(row["summary_json"]),
            quality=json.loads(row["quality_json"]),
            error=row["error"],
        )

    def session(self, session_id: int) -> SessionRecord | None:
        rows = self._rows("SELECT * FROM sessions WHERE id=?", (session_id,))
        return self._session(rows[0]) if rows else None

    def sessions(self, patient_id: str | None = None) -> list[SessionRecord]:
        """Sessions, oldest first (one patient's, or everyone's)."""
        if patient_id is None:
            rows = self._rows("SELECT * FROM sessions ORDER BY started_at, id")
        else:
            rows = self._rows("SELECT * FROM sessions WHERE patient_id=? ORDER BY started_at, id", (patient_id,))
        return [self._session(r) for r in rows]

    def windows(self, session_id: int, with_keypoints: bool = False) -> list[WindowRecord]:
        rows = self._rows("SELECT * FROM windows WHERE session_id=? ORDER BY id", (session_id,))
        out = []
        for r in rows:
            kp = None
            if with_keypoints and r["keypoints"] is not None:
                with np.load(io.BytesIO(r["keypoints"]), allow_pickle=False) as npz:
                    kp = {k: npz[k] for k in npz.files}
            out.append(
                WindowRecord(
                    id=r["id"],
                    session_id=r["session_id"],
                    time_s=r["time_s"],
                    frame=r["frame"],
                    subject=r["subject"],
                    probabilities=json.loads(r["probabilities_json"]),
                    valid_fraction=r["valid_fraction"],
                    features=json.loads(r["features_json"]),
                    timings_ms=json.loads(r["timings_json"]),
                    keypoints=kp,
                )
            )
        return out

    # ---- audit log and settings -----------------------------------------------------------------------------

    def audit(self, action: str, target: str, client: str) -> None:
        """Record who exported what (exports are the only way data leaves the kiosk)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO audit(at, action, target, client) VALUES (?, ?, ?, ?)", (now_iso(), action, target, client)
            )

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        return [AuditEntry(**r) for r in self._rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))]

    def setting(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM settings WHERE key=?", (key,))
        return rows[0]["value"] if rows else None

    def set_setting(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, value))

    # ---- files ----------------------------------------------------------------------------------------------

    def backup(self, dest: str | Path, overwrite: bool = False) -> Path:
        """A consistent copy of the database while it is in use (SQLite's online backup), written atomically."""
        dest = Path(dest)
        try:
            with atomic_output(dest, overwrite) as part:
                target = sqlite3.connect(str(part))
                try:
                    with self._lock:
                        self._db.backup(target)
                finally:
                    target.close()
        except (OSError, sqlite3.Error) as exc:
            raise CpgaitError(f"{dest}: cannot write the backup there ({exc})") from None
        return dest

    def size_bytes(self) -> int:
        """The database with its WAL and shared-memory files."""
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
