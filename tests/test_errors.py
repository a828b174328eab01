"""The output rules every command follows: paths checked before any work, outputs written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cpgait.errors import CpgaitError, PendingOutput, atomic_output, check_outputs, require_writable


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    video = tmp_path / "walk.mp4"
    video.write_bytes(b"precious")
    for out in (video, tmp_path / "." / "walk.mp4"):
        with pytest.raises(CpgaitError, match="same file as the input .*walk.mp4"):
            check_outputs([video], [out], overwrite=True)
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    hard = tmp_path / "hard.mp4"
    os.link(video, hard)
    for alias in (link, hard):  # another name of the same file
        with pytest.raises(CpgaitError, match="same file as the input"):
            check_outputs([video], [alias], overwrite=True)
    assert video.read_bytes() == b"precious"


def test_two_outputs_that_are_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CpgaitError, match="same file as the output"):
        check_outputs([], [tmp_path / "a.jsonl", tmp_path / "x" / ".." / "a.jsonl"], overwrite=True)
    assert check_outputs([None], [tmp_path / "a.jsonl", None, tmp_path / "b.jsonl"], overwrite=False) == [
        tmp_path / "a.jsonl",
        tmp_path / "b.jsonl",
    ]


@pytest.mark.parametrize("case", ["parent is a file", "output is a folder", "exists", "folder is a file"])
def test_unwritable_outputs_are_one_clear_error_before_any_work(tmp_path: Path, case: str) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    outs, folders, words = [], [], ""
    if case == "parent is a file":
        outs, words = [blocker / "out.npz"], "cannot write there"
    elif case == "output is a folder":
        outs, words = [tmp_path], "is a folder"
    elif case == "exists":
        outs, words = [blocker], "already exists; pass --overwrite"
    else:
        folders, words = [blocker], "is not a directory"
    with pytest.raises(CpgaitError, match=words):
        check_outputs([], outs, overwrite=False, folders=folders)


def test_an_unwritable_folder_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere: a folder under /proc stands in for a read-only one
        target = Path("/proc/cpgait-test/out.json")
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "out.json"
    with pytest.raises(CpgaitError, match="cannot write there"):
        require_writable(target, overwrite=False)


def test_atomic_output_replaces_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("previous")
    with pytest.raises(RuntimeError), atomic_output(path, overwrite=True) as tmp:
        tmp.write_text("half")
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp.name.startswith(".")
        raise RuntimeError("the run failed")
    assert path.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with pytest.raises(CpgaitError, match="already exists"), atomic_output(path, overwrite=False):
        pass


def test_pending_output_commit_and_discard(tmp_path: Path) -> None:
    pending = PendingOutput(tmp_path / "sub" / "v.mp4")
    pending.tmp.write_bytes(b"frames")
    assert not pending.path.exists()
    pending.commit()
    assert pending.path.read_bytes() == b"frames" and not pending.tmp.exists()
    with pytest.raises(RuntimeError, match="already finished"):
        pending.commit()
    other = PendingOutput(pending.path)
    other.tmp.write_bytes(b"partial")
    other.discard()
    assert pending.path.read_bytes() == b"frames" and not other.tmp.exists()
