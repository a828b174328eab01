"""The results folder of `cpgait batch`: one folder per recording, keyed by content, published atomically.

RESULTS/videos/<stem>-<key>/ holds `sequence.npz` (as `cpgait pose` writes it), `events.jsonl` (as `cpgait run
--events` writes it: start, subject, window and summary lines) and `result.json` (status, error, attempts, frames,
windows, the session estimate, stage times). The key hashes the video's bytes, the model file's bytes and the
settings that change the answer, so a rerun finds what is done whatever the files are called and redoes a video
whose content, model or settings changed. A folder is built under RESULTS/.partial/ and renamed into place in one
step, so a crash never leaves a half-written result that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

OK = "ok"
NO_SUBJECT = "no_subject"  # read to the end; nobody walked (no sequence, events say "not enough walking yet")
FAILED = "failed"
FINISHED = (OK, NO_SUBJECT)  # statuses a rerun keeps; a failed video is redone
RESULT = "result.json"
SEQUENCE = "sequence.npz"
EVENTS = "events.jsonl"


def result_key(video_hash: str, model_hash: str, settings: dict) -> str:
    """The identity of one result: video content, model content and the settings that change the answer."""
    text = json.dumps({"video": video_hash, "model": model_hash, "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ResultStore:
    """RESULTS/videos/<stem>-<key>/ per recording (module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.videos = self.root / "videos"
        self.partial = self.root / ".partial"

    def folder(self, video: str, key: str) -> Path:
        return self.videos / f"{Path(video).stem}-{key}"

    def finished(self, video: str, key: str) -> dict | None:
        """The stored result when this key was finished (ok or no subject), else None (absent or failed)."""
        path = self.folder(video, key) / RESULT
        if not path.is_file():
            return None
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # unreadable: redo it
        return result if result.get("status") in FINISHED else None

    def new_work_folder(self, key: str) -> Path:
        """An empty private folder to build one result in (published with `publish`)."""
        path = self.partial / f"{key}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def publish(self, work: Path, video: str, key: str, result: dict) -> Path:
        """Write result.json into `work` and move the folder into place in one rename (replacing a failed one)."""
        tmp = work / (RESULT + ".part")
        tmp.write_text(json.dumps(result, indent=1, allow_nan=False), encoding="utf-8")
        tmp.replace(work / RESULT)
        final = self.folder(video, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # an earlier failed attempt: move it aside first, then drop it
            stale = self.partial / f"stale-{uuid.uuid4().hex[:8]}"
            os.replace(final, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(work, final)
        return final

    def record_failure(self, video: str, key: str, result: dict) -> Path:
        """Publish a failed result that no worker could write (its worker crashed every time)."""
        self.partial.mkdir(parents=True, exist_ok=True)
        return self.publish(self.new_work_folder(key), video, key, result)
