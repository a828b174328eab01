"""A Triton model repository for the classifier: `cpgait export … --triton REPO/`.

REPO/<name>/config.pbtxt, REPO/<name>/<version>/model.onnx and the model contract beside it
(REPO/<name>/<version>/contract.json). The configuration comes from the contract: one FP32 input per contract
input with the batch dimension left to Triton (`max_batch_size`), the logits output, dynamic batching (requests
from many kiosks are merged into one batch within `max_queue_delay_us`) and an instance group. Exporting again
into the same repository adds the next version; Triton serves the newest (version_policy latest 1), and rolling
back is deleting a version folder.

Backends: "onnxruntime" (Triton's ONNX Runtime backend, what a Triton server image brings) or "python" (a
`model.py` that runs the same ONNX file with ONNX Runtime inside Triton's Python backend, for servers built
without the ONNX Runtime backend). Given a TensorRT engine built by `cpgait build`, REPO/<name>_trt/ holds the
plan variant on the GPU, its batch limit taken from the engine's profile.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, atomic_output
from cpgait.runtime.backends.triton_runner import served_name
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.tensors import TensorSpec

BACKENDS = ("onnxruntime", "python")
KINDS = ("KIND_CPU", "KIND_GPU")
PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")  # copied as model.py for the python backend
_TYPES = {np.dtype(np.float32): "TYPE_FP32", np.dtype(np.float16): "TYPE_FP16"}


@dataclass(frozen=True)
class TritonSettings:
    """How Triton serves the classifier: backend, batch limit, dynamic batching delay, instances and device."""

    backend: str = "onnxruntime"
    max_batch_size: int = 32
    max_queue_delay_us: int = 2000
    instances: int = 1
    kind: str = "KIND_CPU"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise CpgaitError(f"Triton backend {self.backend!r}; expected one of {', '.join(BACKENDS)}")
        if self.kind not in KINDS:
            raise CpgaitError(f"instance kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.max_batch_size < 1 or self.max_queue_delay_us < 0 or self.instances < 1:
            raise CpgaitError(
                f"max batch {self.max_batch_size}, queue delay {self.max_queue_delay_us} us, {self.instances} "
                "instance(s): expected a batch >= 1, a delay >= 0 and at least one instance"
            )


def _tensor(spec: TensorSpec) -> str:
    if spec.dtype not in _TYPES or spec.shape[0] is not None or None in spec.shape[1:]:
        raise CpgaitError(f"input {spec.name}: {spec.dtype} {spec.shape}; expected float [batch, fixed dims...]")
    dims = ", ".join(str(d) for d in spec.shape[1:])
    return f'  {{\n    name: "{spec.name}"\n    data_type: {_TYPES[spec.dtype]}\n    dims: [ {dims} ]\n  }}'


def config_text(name: str, contract: ModelContract, settings: TritonSettings, platform: str | None = None) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig) for a classifier with this contract."""
    output = TensorSpec(contract.output_name, np.dtype(np.float32), (None, len(contract.class_names)))
    backend = f'platform: "{platform}"' if platform else f'backend: "{settings.backend}"'
    preferred = sorted({b for b in (4, 8, 16, settings.max_batch_size) if b <= settings.max_batch_size})
    return "\n".join(
        [
            f'name: "{name}"',
            backend,
            f"max_batch_size: {settings.max_batch_size}",
            "version_policy: { latest: { num_versions: 1 } }",
            "input [",
            ",\n".join(_tensor(s) for s in contract.input_specs()),
            "]",
            "output [",
            _tensor(output),
            "]",
            "dynamic_batching {",
            f"  preferred_batch_size: [ {', '.join(str(b) for b in preferred)} ]",
            f"  max_queue_delay_microseconds: {settings.max_queue_delay_us}",
            "}",
            "instance_group [",
            f"  {{ count: {settings.instances}, kind: {settings.kind} }}",
            "]",
            "",
        ]
    )


def _next_version(folder: Path) -> int:
    versions = [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()] if folder.is_dir() else []
    return max(versions, default=0) + 1


def _write_model(folder: Path, config: str, files: dict[str, Path], contract: ModelContract) -> Path:
    """Add the next version of one model: the files and the contract go in first, config.pbtxt last."""
    version = folder / str(_next_version(folder))
    staging = folder / f".{version.name}.part"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for target, source in files.items():
        shutil.copyfile(source, staging / target)
    (staging / "contract.json").write_text(contract.to_json() + "\n", encoding="utf-8")
    staging.replace(version)
    with atomic_output(folder / "config.pbtxt", overwrite=True) as tmp:
        tmp.write_text(config, encoding="utf-8")
    return version


def write_model_repository(
    onnx: str | Path, repo: str | Path, settings: TritonSettings = TritonSettings(), engine: str | Path | None = None
) -> list[Path]:
    """Add the classifier `onnx` (and its TensorRT `engine`) to the Triton model repository `repo`; returns the
    version folders written. A model already there gains a version; one with other inputs is refused."""
    contract = ModelContract.from_onnx(onnx)
    name = served_name(onnx)  # reference.int8.onnx -> reference_int8, as `cpgait run --backend triton` asks
    repo = Path(repo)
    files = {"model.onnx": Path(onnx)}
    if settings.backend == "python":
        files["model.py"] = PYTHON_MODEL
    written = [_add(repo / name, config_text(name, contract, settings), files, contract)]
    if engine is not None:
        from cpgait.runtime.backends.trt_engine import read_engine_bytes, read_sidecar

        key, engine_contract = read_sidecar(engine)
        read_engine_bytes(engine)  # a truncated or replaced engine is refused before it is copied
        if ModelContract.from_dict(engine_contract, str(engine)) != contract:
            raise CpgaitError(f"{engine}: its contract is not {onnx}'s; build the engine from this model")
        gpu = TritonSettings(
            max_batch_size=key.profile.max,
            max_queue_delay_us=settings.max_queue_delay_us,
            instances=settings.instances,
            kind="KIND_GPU",
        )
        config = config_text(f"{name}_trt", contract, gpu, platform="tensorrt_plan")
        written.append(_add(repo / f"{name}_trt", config, {"model.plan": Path(engine)}, contract))
    return written


def _add(folder: Path, config: str, files: dict[str, Path], contract: ModelContract) -> Path:
    old = folder / "config.pbtxt"
    if old.is_file() and _io_lines(old.read_text(encoding="utf-8")) != _io_lines(config):
        raise CpgaitError(
            f"{old}: this model's inputs or outputs differ from the new version's; use another repository or name"
        )
    return _write_model(folder, config, files, contract)


def _io_lines(config: str) -> list[str]:
    """The part of a config that versions of one model must share (inputs and outputs)."""
    text = config.split("input [", 1)[-1].split("dynamic_batching", 1)[0]
    return [line.strip() for line in text.splitlines() if line.strip()]
