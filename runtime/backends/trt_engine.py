"""TensorRT engines: optimisation profile, cache key, side-car, build (TensorRT 10 and 11) and checked loading.

An engine is only valid for the GPU, compute capability and TensorRT version it was built with, so every engine
`<stem>.<precision>.<key>.plan` has a side-car `.json` holding the key parts and the model contract. Loading an
engine on another device fails with a message that says how to rebuild; `build_engine` looks the key up in its
output folder and builds only on a miss, so pointing it at a cache folder on the device gives build-on-first-load
(as jetson-inference does).

Version dispatch (`build_plan`): TensorRT 10 (JetPack 6) builds FP16 with `BuilderFlag.FP16` and implicit INT8 with
a calibrator (deprecated); TensorRT 11 has strongly typed networks only: FP16 comes from an FP16 ONNX
(`cpgait export --fp16`) and INT8 from a Q/DQ ONNX (`cpgait calibrate`). Q/DQ models are built strongly typed on
both. tensorrt is imported only inside the functions that build or read an engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.cuda import cuda_check, cuda_runtime
from cpgait.runtime.backends.model_file import model_kind
from cpgait.runtime.core.contract import ModelContract

ENGINE_FORMAT = "cpgait.engine/1"
PRECISIONS = ("fp32", "fp16", "int8")
MODEL_KINDS = ("fp32", "fp16", "qdq")


@dataclass(frozen=True)
class Profile:
    """Batch sizes of the one optimisation profile: every input's batch dimension spans min..max, tuned for opt."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not all(isinstance(v, int) for v in (self.min, self.opt, self.max)):
            raise CpgaitError(f"batch profile {self.min},{self.opt},{self.max}: expected whole numbers")
        if not 1 <= self.min <= self.opt <= self.max:
            raise CpgaitError(f"batch profile {self.min},{self.opt},{self.max}: expected 1 <= min <= opt <= max")

    @classmethod
    def parse(cls, text: str) -> Profile:
        """Parse 'min,opt,max' as given on the command line (e.g. '1,1,8')."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise CpgaitError(f"--batch {text!r}: expected three whole numbers min,opt,max such as 1,1,8")
        return cls(*(int(p) for p in parts))

    def __str__(self) -> str:
        return f"{self.min},{self.opt},{self.max}"


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is bound to: TensorRT version, GPU name and compute capability."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str

    def describe(self) -> str:
        return f"{self.gpu_name} (sm {self.compute_capability}) with TensorRT {self.tensorrt_version}"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; equal keys mean an engine can be reused as is."""

    model_sha256: str
    precision: str
    profile: Profile
    device: DeviceInfo

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise CpgaitError(f"precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")

    def digest(self) -> str:
        """Short stable hash of all key parts (used in the engine's file name)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EngineKey:
        return cls(
            model_sha256=data["model_sha256"],
            precision=data["precision"],
            profile=Profile(**data["profile"]),
            device=DeviceInfo(**data["device"]),
        )


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (the model part of the engine key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def engine_key(model_sha256: str, precision: str, profile: Profile, device: DeviceInfo) -> EngineKey:
    """The cache key of an engine: model hash + precision + profile + TensorRT version + GPU + compute capability."""
    return EngineKey(model_sha256, precision, profile, device)


def engine_paths(out_dir: str | Path, model_path: str | Path, key: EngineKey) -> tuple[Path, Path]:
    """Engine and side-car paths for a key: `<out>/<stem>.<precision>.<digest>.plan` and `.json`."""
    stem = Path(model_path).name.removesuffix(".onnx")
    plan = Path(out_dir) / f"{stem}.{key.precision}.{key.digest()}.plan"
    return plan, plan.with_suffix(".json")


@dataclass(frozen=True)
class BuildPlan:
    """How one TensorRT major version builds one precision from one kind of ONNX model."""

    strongly_typed: bool
    builder_flags: tuple[str, ...]
    needs_calibrator: bool


def build_plan(precision: str, tensorrt_major: int, model_kind: str) -> BuildPlan:
    """Pure version dispatch; raises naming what to do instead when a combination cannot be built."""
    if precision not in PRECISIONS:
        raise CpgaitError(f"precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if model_kind not in MODEL_KINDS:
        raise CpgaitError(f"model kind {model_kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    if tensorrt_major < 10:
        raise CpgaitError(f"TensorRT {tensorrt_major}.x is not supported; cpgait needs TensorRT 10 or 11")
    legacy = tensorrt_major == 10
    if model_kind == "qdq":
        if precision != "int8":
            raise CpgaitError(f"a Q/DQ model builds as int8, not {precision}; build the FP32 ONNX for {precision}")
        return BuildPlan(strongly_typed=legacy, builder_flags=(), needs_calibrator=False)
    if precision == "int8":
        if not legacy:
            raise CpgaitError(
                "TensorRT 11 has no implicit INT8 (calibrator); quantize first with "
                "`cpgait calibrate model.onnx --data DATA -o model.int8.onnx` and build that file"
            )
        if model_kind == "fp16":
            raise CpgaitError("implicit INT8 calibration needs the FP32 ONNX, not the FP16 variant")
        return BuildPlan(strongly_typed=False, builder_flags=("INT8",), needs_calibrator=True)
    if precision == "fp16":
        if model_kind == "fp16":
            return BuildPlan(strongly_typed=legacy, builder_flags=(), needs_calibrator=False)
        if legacy:
            return BuildPlan(strongly_typed=False, builder_flags=("FP16",), needs_calibrator=False)
        raise CpgaitError(
            "TensorRT 11 takes FP16 from the model's types: export the FP16 variant with "
            "`cpgait export CKPT --fp16` and build model.fp16.onnx"
        )
    if model_kind == "fp16":
        raise CpgaitError("fp32 asked for an FP16 model; build the FP32 ONNX instead")
    return BuildPlan(strongly_typed=False, builder_flags=(), needs_calibrator=False)


def tensorrt_major(trt: object) -> int:
    """Major version of an imported tensorrt module (or any object with `__version__`)."""
    version = str(getattr(trt, "__version__", ""))
    head = version.split(".")[0]
    if not head.isdigit():
        raise CpgaitError(f"cannot read the TensorRT version from {version!r}")
    return int(head)


def import_tensorrt():
    """Import tensorrt, or say plainly that this machine has none (exit 2 from the CLI)."""
    try:
        import tensorrt
    except ImportError:
        raise CpgaitError(
            "TensorRT is not installed here: engines are built on the target device (JetPack ships TensorRT; "
            "on a workstation install the `tensorrt` extra). The ONNX and INT8 ONNX models run on ONNX Runtime."
        ) from None
    return tensorrt


def write_sidecar(path: Path, key: EngineKey, contract_json: str) -> None:
    path.write_text(
        json.dumps(
            {"format": ENGINE_FORMAT, "key": key.to_dict(), "contract": json.loads(contract_json)},
            indent=2,
            sort_keys=True,
        )
    )


def read_sidecar(engine_path: str | Path) -> tuple[EngineKey, dict]:
    """Key and contract of an engine, from its side-car JSON."""
    side = Path(engine_path).with_suffix(".json")
    if not side.is_file():
        raise CpgaitError(f"{engine_path}: no side-car {side.name}; build engines with `cpgait build`")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != ENGINE_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CpgaitError(f"{side}: format {found!r}; expected {ENGINE_FORMAT!r}")
        return EngineKey.from_dict(data["key"]), data["contract"]
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise CpgaitError(f"{side}: not a cpgait engine side-car ({exc})") from None


def check_engine_device(engine_path: str | Path, key: EngineKey, here: DeviceInfo) -> None:
    """Refuse an engine built for another GPU, compute capability or TensorRT version, saying how to rebuild."""
    if key.device != here:
        raise CpgaitError(
            f"{engine_path}: built for {key.device.describe()}, but this is {here.describe()}; "
            f"engines do not move between devices: rebuild it here with `cpgait build MODEL.onnx --precision "
            f"{key.precision} --batch {key.profile}`"
        )


def current_device() -> DeviceInfo:
    """TensorRT version, name and compute capability of CUDA device 0 (needs tensorrt and cuda-python)."""
    trt = import_tensorrt()
    cudart = cuda_runtime()
    try:
        props = cuda_check(cudart.cudaGetDeviceProperties(0))
    except RuntimeError as exc:  # no GPU, no driver, or a driver too old for this CUDA
        raise CpgaitError(f"no usable CUDA device for TensorRT ({exc})") from None
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return DeviceInfo(str(trt.__version__), name.strip("\x00 "), f"{props.major}.{props.minor}")


def build_engine(
    model_path: str | Path,
    precision: str,
    profile: Profile,
    out_dir: str | Path,
    workspace_mb: int = 1024,
    calibrator: Callable[[int], object] | None = None,
    overwrite: bool = False,
    require_contract: bool = True,
) -> Path:
    """Build (or reuse from `out_dir`) an engine for this device; returns the engine path.

    The model's contract goes into the side-car; without `require_contract` a model that has none (a pose model)
    gets a side-car with `"contract": null`. Inputs with a fixed batch size (the pose models) are built for that
    size only; the others get `profile`.

    A timing cache (`out_dir/timing.cache`) is read before and written after every build, so rebuilding other
    precisions or profiles on the same device is faster. `calibrator(batch)` makes the TensorRT 10 implicit-INT8
    calibrator (the caller builds it, e.g. `cpgait.calibration.trt_calibrator.make_entropy_calibrator`).
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise CpgaitError(f"{model_path}: no such ONNX model file")
    if workspace_mb < 1:
        raise CpgaitError(f"--workspace {workspace_mb} MB; expected at least 1")
    contract = ModelContract.from_onnx(model_path) if require_contract else ModelContract.read_onnx(model_path)
    contract_json = "null" if contract is None else contract.to_json()
    trt = import_tensorrt()
    plan = build_plan(precision, tensorrt_major(trt), model_kind(model_path))
    key = engine_key(file_sha256(model_path), precision, profile, current_device())
    engine_path, side_path = engine_paths(out_dir, model_path, key)
    # TensorRT 10's implicit INT8 also depends on the calibration cache and windows, which the key does not hold:
    # such a build never reuses an engine
    if engine_path.exists() and side_path.exists() and not overwrite and not plan.needs_calibrator:
        return engine_path  # the cache hit: same model, precision, profile and device
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CpgaitError(f"{out}: cannot create the engine folder ({exc.strerror})") from None

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CpgaitError(f"{model_path}: TensorRT's ONNX parser refused it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        if shape[0] >= 0:  # a fixed batch size: the only shape there is
            opt_profile.set_shape(tensor.name, shape, shape, shape)
        else:
            rest = shape[1:]
            opt_profile.set_shape(tensor.name, (profile.min, *rest), (profile.opt, *rest), (profile.max, *rest))
    config.add_optimization_profile(opt_profile)
    if plan.needs_calibrator:
        if calibrator is None:
            raise CpgaitError(
                "implicit INT8 on TensorRT 10 needs --calib-cache FILE (read if it exists, "
                "written from --data windows otherwise)"
            )
        config.int8_calibrator = calibrator(profile.opt)
        config.set_calibration_profile(opt_profile)
    timing_path = out / "timing.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CpgaitError(f"{model_path}: TensorRT could not build a {precision} engine (see the log above)")
    engine_path.write_bytes(bytes(serialized))
    write_sidecar(side_path, key, contract_json)
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return engine_path


def load_engine(engine_path: str | Path, here: DeviceInfo | None = None) -> tuple[bytes, dict]:
    """Serialized engine bytes and contract, after checking the engine was built for this device."""
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        raise CpgaitError(f"{engine_path}: no such engine file")
    key, contract = read_sidecar(engine_path)
    check_engine_device(engine_path, key, here or current_device())
    return engine_path.read_bytes(), contract
