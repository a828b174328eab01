"""FP16 variants of the shipped pose networks, for ONNX Runtime CUDA and TensorRT.

`cpgait export-pose blazepose -o pose-fp16/` writes each network of a pose option under its shipped name with
float16 weights and compute and FP32 inputs and outputs (`to_fp16`, as `cpgait export --fp16` does for the
classifier), so `cpgait run --pose-models pose-fp16/ --pose-backend ort-cuda` (or `trt`) runs them unchanged:
TensorRT 11 takes FP16 only from a model's types (TensorRT 10 can also build FP16 from the FP32 files). The CPU
kiosk keeps the FP32 files: x86 CPUs have no fast float16 arithmetic, and ONNX Runtime CPU runs these files by
casting to float32 around the layers it has no float16 kernel for.

Each file is compared with its FP32 original on ONNX Runtime CPU on a seeded random input in the network's input
range; the file is kept only when every output is within `FP16_TOLERANCE` of that output's range. MoveNet is not
offered: its graph casts to float32 internally, which the converter leaves inconsistent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, atomic_output, require_writable
from cpgait.export.onnx_export import to_fp16
from cpgait.runtime.pose.catalog import POSE_NETWORKS
from cpgait.runtime.pose.interface import asset

FP16_POSES = ("blazepose", "blazepose-lite")
# max |FP16 - FP32| per output, as a share of the FP32 output's range (measured: 3.3e-4 to 4.5e-4)
FP16_TOLERANCE = 2e-3
# the input range each network was trained on (BlazePose's detector [-1, 1], its landmark models [0, 1])
INPUT_RANGE = {
    "blazepose_detector": (-1.0, 1.0),
    "blazepose_landmarks_full": (0.0, 1.0),
    "blazepose_landmarks_lite": (0.0, 1.0),
}


@dataclass(frozen=True)
class Fp16Network:
    """One written FP16 network and its largest output difference from FP32, relative to that output's range."""

    path: Path
    max_relative_diff: float

    def summary(self) -> str:
        return f"{self.path}: FP16 inside, FP32 I/O; max |FP16 - FP32| {self.max_relative_diff:.1e} of the output range"


def relative_diff(fp32: Path | str, fp16: Path | str, seed: int = 0) -> float:
    """Largest |FP16 - FP32| over the outputs on one seeded random input, each as a share of the FP32 output's range."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, fp16)]
    spec = sessions[0].get_inputs()[0]
    low, high = INPUT_RANGE[Path(fp32).stem]
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    x = np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)
    ref, got = (s.run(None, {spec.name: x}) for s in sessions)
    return max(float(np.max(np.abs(a - b)) / max(float(np.ptp(a)), 1e-6)) for a, b in zip(ref, got))


def export_pose_fp16(pose: str, out: str | Path, overwrite: bool = False) -> list[Fp16Network]:
    """Write the FP16 variants of pose option `pose`'s networks into folder `out` (module docstring)."""
    import onnx

    if pose not in FP16_POSES:
        raise CpgaitError(f"pose model {pose!r}: FP16 variants are made for {', '.join(FP16_POSES)} only")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise CpgaitError(f"{folder}: exists and is not a directory; expected a folder to write the pose networks into")
    folder.mkdir(parents=True, exist_ok=True)
    targets = [folder / f"{name}.onnx" for name in POSE_NETWORKS[pose]]
    for target in targets:  # every output checked before the first is written
        require_writable(target, overwrite)
    written = []
    for name, target in zip(POSE_NETWORKS[pose], targets):
        with atomic_output(target, overwrite) as tmp:
            onnx.save(to_fp16(onnx.load(str(asset(name)))), str(tmp))
            diff = relative_diff(asset(name), tmp)
            if not diff <= FP16_TOLERANCE:
                raise CpgaitError(
                    f"{target}: FP16 differs from FP32 by {diff:.1e} of an output's range; expected <= "
                    f"{FP16_TOLERANCE:.0e} (not written)"
                )
        written.append(Fp16Network(target, diff))
    return written
