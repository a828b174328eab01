"""Import 2-D keypoints made by other tools as cpgait sequences (COCO-17, plus the four foot points if present).

Both importers produce a `KeypointSequence` converted with `cpgait.runtime.core.layouts.to_coco17`; a point that the
source marks as not found becomes x = y = NaN with confidence 0. Confidences above 1 are clipped to 1; negative or
non-finite ones, and non-finite x, y of a found point, are errors. Frame numbers that skip ahead leave missing frames
(all points missing) in between, so time stays right. Without `image_size` the image is taken as the smallest one
that holds every found point (neither format records it).

OpenPose JSON (`import_openpose`): a folder of per-frame files `<name>_<frame number>_keypoints.json`, ordered by
that number, in OpenPose's `--write_json` schema::

    {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...], ...}]}

75 numbers per person = BODY_25 (-> `coco17_feet`), 54 = COCO-18 (-> `coco17`); (0, 0, 0) = not found. One person
is followed: in the first frame with anyone, the one with the largest box of found points times mean confidence;
after that, the one whose mid-hip (or, without both hips, centroid of found points) is nearest to the followed
person's last position, if it is within (frames since last seen) x (the followed person's box diagonal) of it.
Otherwise the frame is missing: whoever was detected there is someone else (a parent, a therapist), who moves in
only after a gap long enough for the followed child to have walked that far.

Per-frame CSV (`import_csv`, written by `write_csv`): UTF-8, comma-separated, one header row, one row per frame::

    frame,time_s,nose_x,nose_y,nose_c,left_eye_x,left_eye_y,left_eye_c,...
    0,0,312.5,120.25,0.93,318,114.5,0.88,...
    1,0.04,313.25,120.5,0.91,,,0,...

| column             | required | meaning                                                                          |
|--------------------|----------|----------------------------------------------------------------------------------|
| `frame`            | yes      | integer frame number, strictly increasing                                        |
| `time_s`           | no       | time of the frame in seconds; gives the fps when `fps` is not passed             |
| `<joint>_x`, `_y`  | yes      | pixel coordinates (empty when the point was not found)                           |
| `<joint>_c`        | yes      | confidence in [0, 1]; 0 or empty = not found                                     |

The joints are those of one layout of `cpgait.runtime.core.layouts.LAYOUTS` (`coco17`, `coco17_feet`, `blazepose33`,
`body25`, `coco18`), each with all three columns, in any order, and no other columns; the layout is recognised from
the header unless given.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, atomic_output
from cpgait.runtime.core.files import check_frame_numbers, parse_json, read_text
from cpgait.runtime.core.layouts import LAYOUTS, Layout, get_layout, to_coco17
from cpgait.runtime.core.sequence import KeypointSequence

OPENPOSE_LAYOUTS = {75: "body25", 54: "coco18"}
_FRAME_NUMBER = re.compile(r"(\d+)_keypoints\.json$")


def import_openpose(
    folder: str | Path,
    fps: float,
    layout: str = "auto",
    image_size: tuple[int, int] | None = None,
    label: int | None = None,
    subject_id: str = "",
    recording_id: str = "",
) -> KeypointSequence:
    """Read a folder of OpenPose `*_keypoints.json` files (BODY_25 or COCO-18) as one person's sequence."""
    folder = Path(folder)
    if fps is None or not (math.isfinite(fps) and fps > 0):
        raise CpgaitError(f"{folder}: fps is {fps}; OpenPose JSON has no timing, so the video's fps (> 0) is needed")
    if layout not in ("auto", *OPENPOSE_LAYOUTS.values()):
        raise CpgaitError(f"OpenPose layout is {layout!r}; expected auto, {' or '.join(OPENPOSE_LAYOUTS.values())}")
    if not folder.is_dir():
        raise CpgaitError(f"{folder}: not a folder; expected a folder of OpenPose *_keypoints.json files")
    numbered: dict[int, Path] = {}
    for path in folder.glob("*_keypoints.json"):
        match = _FRAME_NUMBER.search(path.name)
        if match is None:
            raise CpgaitError(f"{path}: no frame number in the name; expected <name>_<frame>_keypoints.json")
        number = int(match.group(1))
        if number in numbered:
            raise CpgaitError(f"{path} and {numbered[number]} are both frame {number}; expected one file per frame")
        numbered[number] = path
    if not numbered:
        raise CpgaitError(f"{folder}: no *_keypoints.json files (OpenPose --write_json output) in this folder")
    first, last = min(numbered), max(numbered)
    check_frame_numbers(sorted(numbered), fps, str(folder))
    src_layout = None if layout == "auto" else layout
    frames: list[np.ndarray | None] = []
    track: _Track | None = None
    for number in range(first, last + 1):
        people: list[np.ndarray] = []
        if number in numbered:
            people, src_layout = _read_openpose_file(numbered[number], src_layout)
        if people and track is None and src_layout is not None:  # a file with people names its layout
            track = _Track(src_layout)
        frames.append(None if track is None else track(people, number))
    if src_layout is None or all(p is None for p in frames):
        raise CpgaitError(f"{folder}: nobody was detected in any of its {len(numbered)} OpenPose files")
    num_joints = get_layout(src_layout).num_joints
    missing = np.full((num_joints, 3), (np.nan, np.nan, 0.0))
    keypoints = np.stack([missing if p is None else p for p in frames])
    return make_sequence(
        keypoints,
        src_layout,
        fps,
        image_size,
        label,
        subject_id,
        recording_id or folder.name,
        f"OpenPose JSON ({src_layout}) from {folder.name}, imported by cpgait import; licence: that of the source data",
        where=str(folder),
    )


def _read_openpose_file(path: Path, layout: str | None) -> tuple[list[np.ndarray], str | None]:
    """The people of one OpenPose frame as `[V, 3]` arrays, and the layout (detected from the first person seen)."""
    schema = 'expected OpenPose JSON {"people": [{"pose_keypoints_2d": [x, y, c, ...]}, ...]}'
    data = parse_json(read_text(path, "OpenPose JSON file"), str(path), schema.removeprefix("expected "))
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise CpgaitError(f"{path}: no 'people' list; {schema}")
    people = []
    for i, person in enumerate(data["people"]):
        values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise CpgaitError(f"{path}: person {i} has no list of numbers 'pose_keypoints_2d'; {schema}")
        found = OPENPOSE_LAYOUTS.get(len(values))
        if found is None or (layout is not None and found != layout):
            expected = "75 (BODY_25) or 54 (COCO-18)"
            if layout is not None:
                expected = f"{3 * get_layout(layout).num_joints} ({layout})"
            raise CpgaitError(f"{path}: person {i} has {len(values)} pose values; expected {expected}")
        layout = found
        points = np.asarray(values, dtype=np.float64).reshape(-1, 3)
        people.append(found_points(points, f"{path}: person {i}", get_layout(found)))
    return people, layout


def found_points(kp: np.ndarray, where: str, layout: Layout) -> np.ndarray:
    """Validate `[V, 3]` or `[T, V, 3]` x, y, c: not found (c = 0 or NaN) -> NaN, 0; c above 1 clipped to 1.

    Errors name `where`, the joint and, for `[T, V, 3]`, the row (0-based frame index).
    """
    conf = np.where(np.isnan(kp[..., 2]), 0.0, kp[..., 2])

    def row(index: tuple[int, ...]) -> str:
        return f"{where}{f' row {index[0]}' if len(index) > 1 else ''}"

    invalid = ~np.isfinite(conf) | (conf < 0)
    if invalid.any():
        i = tuple(int(j) for j in np.argwhere(invalid)[0])
        raise CpgaitError(f"{row(i)}: confidence of {layout.joints[i[-1]]} is {kp[i][2]}; expected a number in [0, 1]")
    found = conf > 0
    bad = found & ~np.all(np.isfinite(kp[..., :2]), axis=-1)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise CpgaitError(
            f"{row(i)}: {layout.joints[i[-1]]} has confidence {conf[i]} but x, y = {kp[i][0]}, {kp[i][1]}; "
            "expected numbers (or confidence 0 when the point was not found)"
        )
    out = kp.copy()
    out[..., 2] = np.minimum(conf, 1.0)
    out[~found] = (np.nan, np.nan, 0.0)
    return out


def _anchor(person: np.ndarray, layout: str) -> np.ndarray | None:
    """Mid-hip when both hips were found, else the centroid of the found points; None when nothing was found."""
    found = person[:, 2] > 0
    if not found.any():
        return None
    lay = get_layout(layout)
    hips = [lay.index("left_hip"), lay.index("right_hip")]
    chosen = hips if found[hips].all() else np.flatnonzero(found)
    return person[chosen, :2].mean(axis=0)


def _box(person: np.ndarray) -> np.ndarray:
    """Width and height of the box around the found points."""
    return np.ptp(person[person[:, 2] > 0, :2], axis=0)


@dataclass
class _Track:
    """Follows one person through the frames of a recording (see the module docstring for the rule)."""

    layout: str
    position: np.ndarray | None = None
    reach: float = 0.0
    last_seen: int = 0

    def __call__(self, people: list[np.ndarray], frame: int) -> np.ndarray | None:
        """The followed person among this frame's `people` (None when it is not among them)."""
        candidates = [(p, a) for p in people if (a := _anchor(p, self.layout)) is not None]
        if self.position is None:
            chosen = max(candidates, key=lambda c: float(np.prod(_box(c[0])) * c[0][:, 2].mean()), default=None)
        else:
            limit = self.reach * (frame - self.last_seen)
            near = [c for c in candidates if np.hypot(*(c[1] - self.position)) <= limit]
            chosen = min(near, key=lambda c: float(np.hypot(*(c[1] - self.position))), default=None)
        if chosen is None:
            return None
        person, self.position = chosen
        self.reach = max(float(np.hypot(*_box(person))), 1.0)
        self.last_seen = frame
        return person


def import_csv(
    path: str | Path,
    fps: float | None = None,
    layout: str = "auto",
    image_size: tuple[int, int] | None = None,
    label: int | None = None,
    subject_id: str = "",
    recording_id: str = "",
) -> KeypointSequence:
    """Read a per-frame keypoint CSV (format in the module docstring) as a sequence."""
    path = Path(path)
    text = read_text(path, "keypoint CSV")
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip() for h in next(reader, [])]
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CpgaitError(f"{path}: cannot read as CSV ({exc})") from None
    lay = _csv_layout(path, header, layout)
    if not rows:
        raise CpgaitError(f"{path}: no frames below the header; expected one row per frame")
    column = {name: i for i, name in enumerate(header)}
    xyz = [[column[f"{j}_{a}"] for a in "xyc"] for j in lay.joints]
    numbers: list[int] = []
    times: list[float] = []
    points: list[np.ndarray] = []
    for line, row in rows:
        where = f"{path} line {line}"
        if len(row) != len(header):
            raise CpgaitError(f"{where}: {len(row)} values; expected {len(header)} as in the header")
        number = _cell_int(row[column["frame"]], where, "frame")
        if number < 0 or (numbers and number <= numbers[-1]):
            raise CpgaitError(f"{where}: frame is {number}; expected a number >= 0 and above the previous row's")
        numbers.append(number)
        if "time_s" in column:
            times.append(_cell_float(row[column["time_s"]], where, "time_s", allow_empty=False))
        values = np.array([[_cell_float(row[i], where, header[i]) for i in joint] for joint in xyz])
        points.append(found_points(values, where, lay))
    check_frame_numbers(numbers, None, str(path))
    fps = _csv_fps(path, fps, numbers, times)
    check_frame_numbers(numbers, fps, str(path))
    keypoints = np.full((numbers[-1] - numbers[0] + 1, lay.num_joints, 3), np.nan)
    keypoints[..., 2] = 0.0
    keypoints[np.asarray(numbers) - numbers[0]] = np.stack(points)
    return make_sequence(
        keypoints,
        lay.name,
        fps,
        image_size,
        label,
        subject_id,
        recording_id or path.stem,
        f"keypoint CSV ({lay.name}) {path.name}, imported by cpgait import; licence: that of the source data",
        where=str(path),
    )


def _csv_layout(path: Path, header: list[str], layout: str) -> Layout:
    """The layout whose joints the header has, each with x, y, c; unknown or missing columns are named."""
    if "frame" not in header:
        raise CpgaitError(f"{path} line 1: no 'frame' column; expected frame[,time_s],<joint>_x,<joint>_y,<joint>_c...")
    if len(set(header)) != len(header):
        raise CpgaitError(f"{path} line 1: repeated column names; expected each column once")
    point_columns = [h for h in header if h not in ("frame", "time_s")]
    joints = {re.sub(r"_[xyc]$", "", h) for h in point_columns}
    if layout == "auto":
        lay = max(LAYOUTS.values(), key=lambda lay: (len(joints & set(lay.joints)), -len(lay.joints)))
    else:
        lay = get_layout(layout)
    expected = {f"{j}_{a}" for j in lay.joints for a in "xyc"}
    unknown = [h for h in point_columns if h not in expected]
    missing = [f"{j}_{a}" for j in lay.joints for a in "xyc" if f"{j}_{a}" not in header]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
        raise CpgaitError(
            f"{path} line 1: {'; '.join(problems)} for layout {lay.name}; expected frame, optional time_s, and "
            f"<joint>_x, <joint>_y, <joint>_c for each of: {', '.join(lay.joints)}"
        )
    return lay


def _cell_float(text: str, where: str, name: str, allow_empty: bool = True) -> float:
    text = text.strip()
    if text == "" and allow_empty:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise CpgaitError(f"{where}: {name} is {text!r}; expected a number") from None


def _cell_int(text: str, where: str, name: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise CpgaitError(f"{where}: {name} is {text.strip()!r}; expected a whole number") from None


def _csv_fps(path: Path, fps: float | None, numbers: list[int], times: list[float]) -> float:
    """The fps given, else the one the time_s column implies; a given fps that contradicts time_s is an error."""
    from_times = None
    if len(times) > 1:
        per_frame = np.diff(times) / np.diff(numbers)
        if not np.all(np.isfinite(per_frame)) or per_frame.min() <= 0:
            raise CpgaitError(f"{path}: time_s does not increase with frame; expected seconds that increase")
        from_times = float(f"{1.0 / float(np.median(per_frame)):.6g}")  # time_s is printed, so round off its noise
    if fps is None:
        if from_times is None:
            raise CpgaitError(f"{path}: no fps given and no time_s column (with 2+ rows) to derive it from; pass --fps")
        return from_times
    if from_times is not None and abs(from_times - fps) > 0.01 * fps:
        raise CpgaitError(f"{path}: time_s implies {from_times:.3g} fps but fps {fps:g} was given; expected agreement")
    return fps


def make_sequence(
    keypoints: np.ndarray,
    layout: str,
    fps: float,
    image_size: tuple[int, int] | None,
    label: int | None,
    subject_id: str,
    recording_id: str,
    source: str,
    where: str,
) -> KeypointSequence:
    """Convert to COCO-17 (+ feet), size the image if not given, and validate as a sequence naming the source."""
    kp, coco = to_coco17(keypoints.astype(np.float32), layout)
    if image_size is None:
        found = kp[kp[..., 2] > 0]
        image_size = (
            (int(math.floor(max(found[:, 0].max(), 0))) + 1, int(math.floor(max(found[:, 1].max(), 0))) + 1)
            if len(found)
            else (1, 1)
        )
    try:
        return KeypointSequence(
            keypoints=kp,
            fps=fps,
            layout=coco,
            image_size=image_size,
            label=label,
            subject_id=subject_id,
            recording_id=recording_id,
            source=source,
        )
    except CpgaitError as exc:
        raise CpgaitError(f"{where}: {exc}") from None


def write_csv(seq: KeypointSequence, path: str | Path, overwrite: bool = False) -> Path:
    """Write `seq` in the per-frame CSV format above (the inverse of `import_csv`, for other tools and round trips)."""
    path = Path(path)
    lay = get_layout(seq.layout)
    with atomic_output(path, overwrite) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", "time_s", *(f"{j}_{a}" for j in lay.joints for a in "xyc")])
        for t, frame in enumerate(seq.keypoints):
            cells = []
            for x, y, c in frame:
                cells += ["", "", "0"] if c <= 0 else [f"{x:.9g}", f"{y:.9g}", f"{c:.9g}"]
            writer.writerow([t, f"{t / seq.fps:.9g}", *cells])
    return path
