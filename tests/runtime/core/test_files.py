"""Every reader is total: the inputs that once crashed or hung a loader (the regression corpus below) and
property-based mutations of valid files each end in one `CpgaitError` naming the file, in bounded time."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.files import MAX_FRAMES, check_frame_numbers, parse_json, read_text
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.data.dataset import Dataset, Record
from cpgait.runtime.data.importers import import_csv, import_openpose, write_csv

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _sequence(frames: int = 20) -> KeypointSequence:
    kp = np.random.default_rng(0).uniform(10, 600, (frames, 17, 3)).astype(np.float32)
    kp[..., 2] = 0.9
    return KeypointSequence(kp, 30.0, "coco17", (640, 480), label=1, subject_id="s1", recording_id="r1")


def _npy(header: str, payload: bytes = b"") -> bytes:
    """A .npy member with a hand-written header (what a mutated file holds)."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _npz_with(path: Path, member: str, data: bytes) -> Path:
    """A valid sequence file with one member replaced by raw bytes."""
    good = io.BytesIO()
    np.savez(good, **{k: v for k, v in _fields().items()})
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, data if name == f"{member}.npy" else src.read(name))
    return path


def _fields() -> dict:
    seq = _sequence()
    return dict(
        format=np.str_("cpgait.sequence/1"),
        keypoints=seq.keypoints,
        fps=np.float64(30),
        layout=np.str_("coco17"),
        image_size=np.array([640, 480]),
        label=np.int64(1),
        subject_id=np.str_("s1"),
        recording_id=np.str_("r1"),
        source=np.str_("test"),
    )


def _zlib_broken(path: Path) -> Path:
    """A compressed sequence file whose keypoints deflate stream is damaged (zlib.error when read)."""
    _sequence(200).save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("keypoints.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 200, start + 260):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))
    return path


# ---- the regression corpus: inputs that crashed, hung or were wrongly accepted ----------------------------------
HEADER = "{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
SEQUENCE_CORPUS = {
    "zlib error in keypoints": (_zlib_broken, "not a cpgait sequence file"),
    "unterminated npy header (tokenize)": (
        lambda p: _npz_with(p, "keypoints", _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (20, 17, 3")),
        "not a cpgait sequence file",
    ),
    "shape overflowing int64": (
        lambda p: _npz_with(p, "keypoints", _npy(HEADER.format(descr="<f4", shape="(9223372036854775807, 17, 3)"))),
        "bytes; at most",
    ),
    "shape of 10**9 frames (memory)": (
        lambda p: _npz_with(p, "keypoints", _npy(HEADER.format(descr="<f4", shape="(1000000000, 17, 3)"))),
        "bytes; at most",
    ),
    "pickled object": (
        lambda p: _npz_with(p, "subject_id", _npy(HEADER.format(descr="|O", shape="()"), b"\x80\x04N.")),
        "holds Python objects",
    ),
    "text field of 10**8 characters": (
        lambda p: _npz_with(p, "subject_id", _npy(HEADER.format(descr="<U100000000", shape="()"))),
        "characters; at most",
    ),
    "label of infinity": (
        lambda p: _npz_with(p, "label", _npy(HEADER.format(descr="<f8", shape="()"), struct.pack("<d", float("inf")))),
        "wrong type",
    ),
    "named pipe": (lambda p: (os.mkfifo(p), p)[1], "not a regular file"),
}  # fmt: skip


@pytest.mark.parametrize("case", SEQUENCE_CORPUS)
def test_sequence_corpus_is_one_clear_error_in_bounded_time(tmp_path: Path, case: str) -> None:
    make, words = SEQUENCE_CORPUS[case]
    path = make(tmp_path / "bad.npz")
    for read in (KeypointSequence.load, Record.read):
        if read is Record.read and case in (
            "zlib error in keypoints",
            "label of infinity",
            "text field of 10**8 characters",
        ):
            continue  # a record reads only the small fields and the keypoints header (the damage is elsewhere)
        t0 = time.monotonic()
        with pytest.raises(CpgaitError) as info:
            read(path)
        assert str(path) in str(info.value) and words in str(info.value), (read, str(info.value))
        assert time.monotonic() - t0 < 5


def _openpose(folder: Path, numbers: list[int], point: float = 300.0) -> Path:
    folder.mkdir()
    person = {"pose_keypoints_2d": [point, point, 0.9] * 25}
    for n in numbers:
        (folder / f"walk_{n:012d}_keypoints.json").write_text(json.dumps({"people": [person]}))
    return folder


def test_openpose_frame_jumps_are_refused_at_once(tmp_path: Path) -> None:
    for jump, words in (
        (10**9, "span 1000000002 frames"),
        (10**6, "span 1000002 frames"),
        (5000, "jump from 1 to 5001"),
    ):
        folder = _openpose(tmp_path / f"j{jump}", [0, 1, 1 + jump])
        t0 = time.monotonic()
        with pytest.raises(CpgaitError, match=words):
            import_openpose(folder, 25.0)
        assert time.monotonic() - t0 < 2
    assert (
        import_openpose(_openpose(tmp_path / "ok", [0, 1, 30]), 25.0).num_frames == 31
    )  # a short gap is missing frames


@pytest.mark.parametrize(
    "case", ["1e30 keypoint csv", "1e30 keypoint openpose", "csv pipe", "openpose pipe", "csv jump"]
)
def test_import_corpus_is_one_clear_error(tmp_path: Path, case: str) -> None:
    csv_path = write_csv(_sequence(), tmp_path / "k.csv")
    if case == "1e30 keypoint csv":
        text = csv_path.read_text().splitlines()
        cells = text[3].split(",")
        cells[2] = "1e30"
        csv_path.write_text("\n".join([*text[:3], ",".join(cells), *text[4:]]) + "\n")
        target, words, read = csv_path, "within +-1e+06", lambda p: import_csv(p, 30.0)
    elif case == "1e30 keypoint openpose":
        target, words, read = (
            _openpose(tmp_path / "op", [0, 1], 1e30),
            "within +-1e+06",
            lambda p: import_openpose(p, 30.0),
        )
    elif case == "csv pipe":
        target = tmp_path / "pipe.csv"
        os.mkfifo(target)
        words, read = "not a regular file", lambda p: import_csv(p, 30.0)
    elif case == "openpose pipe":
        target = _openpose(tmp_path / "op", [0, 1])
        os.mkfifo(target / "walk_000000000002_keypoints.json")
        words, read = "not a regular file", lambda p: import_openpose(p, 30.0)
    else:
        lines = csv_path.read_text().splitlines()
        lines[-1] = "9" * 30 + lines[-1][lines[-1].index(",") :]
        csv_path.write_text("\n".join(lines) + "\n")
        target, words, read = csv_path, f"at most {MAX_FRAMES}", lambda p: import_csv(p, 30.0)
    with pytest.raises(CpgaitError, match=words.replace("+", r"\+")) as info:
        read(target)
    assert str(target) in str(info.value)


def test_a_csv_with_a_byte_order_mark_reads_like_one_without(tmp_path: Path) -> None:
    plain = write_csv(_sequence(), tmp_path / "k.csv")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = import_csv(plain, 30.0), import_csv(bom, 30.0)
    assert np.array_equal(a.keypoints, b.keypoints, equal_nan=True)
    manifest = tmp_path / "m.csv"
    _sequence().save(tmp_path / "s.npz")
    manifest.write_bytes(b"\xef\xbb\xbfpath,subject_id,label\ns.npz,s1,1\n")
    assert len(Dataset.from_path(manifest)) == 1


@pytest.mark.parametrize(
    "text,words",
    [("[" * 100_000, "RecursionError"), ('{"window": ' + "9" * 5000 + "}", "ValueError"), ("{", "malformed JSON")],
)
def test_hostile_json_is_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(CpgaitError, match=words):
        parse_json(text, "x.json", "a contract")
    with pytest.raises(CpgaitError, match="x.onnx"):
        ModelContract.from_json(text, "x.onnx")


def test_frame_number_limits() -> None:
    check_frame_numbers([0, 1, 2, 30 * 60], 30.0, "ok")  # a minute missing is allowed
    with pytest.raises(CpgaitError, match="at most 60 s may be missing"):
        check_frame_numbers([0, 30 * 61 + 2], 30.0, "w")
    with pytest.raises(CpgaitError, match="not a regular file|is a folder"):
        read_text(Path("/"), "CSV")


# ---- property-based: mutations of valid files and arbitrary input ----------------------------------------------
@pytest.fixture(scope="module")
def good_sequence(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("seq") / "good.npz"
    _sequence().save(path)
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_any_mutation_of_a_sequence_file_loads_or_is_one_clear_error(
    tmp_path_factory: pytest.TempPathFactory, good_sequence: bytes, data: st.DataObject
) -> None:
    raw = bytearray(good_sequence)
    for _ in range(data.draw(st.integers(1, 12))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path = tmp_path_factory.mktemp("m") / "m.npz"
    path.write_bytes(bytes(raw[:cut]))
    for read in (KeypointSequence.load, Record.read):
        try:
            read(path)
        except CpgaitError as exc:
            assert str(path) in str(exc)


_CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**40), 10**40).map(str),
    st.text(max_size=8),
    st.just(""),
)


@FUZZ
@given(rows=st.lists(st.lists(_CELLS, min_size=0, max_size=60), max_size=6), header=st.booleans(), bom=st.booleans())
def test_any_csv_imports_or_is_one_clear_error(tmp_path_factory: pytest.TempPathFactory, rows, header, bom) -> None:
    path = tmp_path_factory.mktemp("c") / "k.csv"
    head = "frame,time_s," + ",".join(f"{j}_{a}" for j in get_layout("coco17").joints for a in "xyc")
    lines = ([head] if header else []) + [",".join(r) for r in rows]
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        import_csv(path, 30.0)
    except CpgaitError as exc:
        assert str(path) in str(exc)


_KEYS = st.sampled_from(["people", "pose_keypoints_2d", "x"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(10**30), 10**30) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=80) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=200,
)


@FUZZ
@given(frames=st.lists(st.tuples(st.integers(0, 10**12), _JSON), min_size=1, max_size=4, unique_by=lambda f: f[0]))
def test_any_openpose_folder_imports_or_is_one_clear_error(tmp_path_factory: pytest.TempPathFactory, frames) -> None:
    folder = tmp_path_factory.mktemp("op")
    for number, content in frames:
        (folder / f"w_{number:012d}_keypoints.json").write_text(json.dumps(content))
    t0 = time.monotonic()
    try:
        import_openpose(folder, 30.0)
    except CpgaitError as exc:
        assert str(folder) in str(exc)
    assert time.monotonic() - t0 < 5


_CONTRACT_KEYS = ["layout", "window", "fps", "series_features", "scalar_features", "feature_joints", "streams",
                  "class_names", "output_name", "synthetic", "format", "bogus"]  # fmt: skip


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(_CONTRACT_KEYS), _JSON, max_size=4))
def test_any_contract_json_reads_or_is_one_clear_error(changes: dict) -> None:
    base = json.loads(ModelContract("coco17", 32, 30.0, ("trunk_lean",), (), ()).to_json())
    try:
        ModelContract.from_json(json.dumps({**base, **changes}), "m.onnx")
    except CpgaitError as exc:
        assert "m.onnx" in str(exc)


@FUZZ
@given(content=_JSON, keyed=st.booleans())
def test_any_engine_side_car_reads_or_is_one_clear_error(
    tmp_path_factory: pytest.TempPathFactory, content, keyed
) -> None:
    from cpgait.runtime.backends.trt_engine import ENGINE_FORMAT, read_sidecar

    folder = tmp_path_factory.mktemp("engine")
    if keyed:  # the right format, random key, contract, size and hash
        content = {
            "format": ENGINE_FORMAT,
            "key": content,
            "contract": content,
            "engine_bytes": content,
            "engine_sha256": content,
        }
    (folder / "m.json").write_text(json.dumps(content))
    try:
        read_sidecar(folder / "m.plan")
    except CpgaitError as exc:
        assert "m.json" in str(exc)


def test_a_deeply_nested_engine_side_car_is_one_clear_error(tmp_path: Path) -> None:
    from cpgait.runtime.backends.trt_engine import read_sidecar

    (tmp_path / "m.json").write_text("[" * 100_000)
    with pytest.raises(CpgaitError, match="m.json: not a cpgait engine side-car \\(RecursionError"):
        read_sidecar(tmp_path / "m.plan")
