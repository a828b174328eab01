"""Save MediaPipe's own BlazePose landmarks on a still image: the reference the ONNX pipeline is tested against.

The ONNX BlazePose pipeline in `cpgait.runtime.pose.blazepose` re-implements MediaPipe's pose graph in numpy/OpenCV; the
test `tests/runtime/test_pose.py` compares its landmarks with what `mp.solutions.pose` itself returns on the same
image. This script makes that reference file once; the product never imports mediapipe.

MediaPipe 0.10.21 needs numpy<2, so it runs in its own virtual environment, never in the project's .venv:

    python3 -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install --no-deps mediapipe==0.10.21
    /tmp/mpvenv/bin/pip install absl-py attrs flatbuffers "numpy<2" "protobuf>=4.25.3,<5" \
        "opencv-python-headless<4.12" sentencepiece matplotlib
    /tmp/mpvenv/bin/python scripts/make_pose_reference.py tests/data/messi5.jpg \
        -o tests/data/messi5_mediapipe_pose.json

The image comes from Debian's `opencv-doc` package (`apt-get download opencv-doc`, then `dpkg -x`; file
`/usr/share/doc/opencv-doc/examples/data/messi5.jpg`). The JSON holds the 33 landmarks in image pixels (x, y), MediaPipe's
z (same scale as x) and visibility (the solution API leaves presence unset), plus the versions and options that produced them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

OPTIONS = {
    "static_image_mode": True,
    "model_complexity": 1,
    "enable_segmentation": False,
    "min_detection_confidence": 0.5,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.output.exists() and not args.overwrite:
        sys.exit(f"{args.output}: already exists; pass --overwrite to replace it")

    import cv2
    import mediapipe as mp
    import numpy as np

    image = cv2.imread(str(args.image))
    if image is None:
        sys.exit(f"{args.image}: not a readable image")
    height, width = image.shape[:2]
    with mp.solutions.pose.Pose(**OPTIONS) as pose:
        result = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if result.pose_landmarks is None:
        sys.exit(f"{args.image}: MediaPipe found no person")
    marks = result.pose_landmarks.landmark
    reference = {
        "image": args.image.name,
        "image_sha256": hashlib.sha256(args.image.read_bytes()).hexdigest(),
        "image_size": [width, height],
        "layout": "blazepose33",
        "made_with": {
            "script": "scripts/make_pose_reference.py",
            "api": "mediapipe.solutions.pose.Pose(...).process(RGB image)",
            "options": OPTIONS,
            "mediapipe": mp.__version__,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "columns": ["x_px", "y_px", "z", "visibility"],
        "units": "x, y in image pixels (MediaPipe's normalised x * width, y * height); z is MediaPipe's relative "
        "depth times width (same scale as x); visibility in [0, 1]",
        "landmarks": [
            [round(m.x * width, 3), round(m.y * height, 3), round(m.z * width, 3), round(m.visibility, 5)]
            for m in marks
        ],
    }
    rows = ",\n  ".join(json.dumps(row) for row in reference.pop("landmarks"))
    text = json.dumps(reference, indent=1)[:-2] + f',\n "landmarks": [\n  {rows}\n ]\n}}\n'
    json.loads(text)  # the hand-joined rows must still be valid JSON
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {len(marks)} landmarks to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
