"""TensorRT engines: optimisation profile, cache key, side-car, build (TensorRT 10 and 11) and checked loading.

An engine is only valid for the GPU, compute capability and TensorRT version it was built with, so every engine
`<stem>.<precision>.<key>.plan` has a side-car `.json` holding the key parts and the model contract. Loading an
engine on another device fails with a message that says how to rebuild; `build_engine` looks the key up in its
output folder and builds only on a miss, so pointing it at a cache folder on the device gives build-on-first-load
(as jetson-inference does).

Everything written here survives a power cut and a device swap: engine, side-car and timing cache are written
atomically (`write_atomic`), the side-car (written last) holds the engine's sha256 so a truncated or foreign engine
is detected and rebuilt, the key holds the GPU's SM count and memory (an AGX Orin and an Orin Nano are both "Orin",
sm 8.7), and the timing cache is per device and checked when loaded (a corrupt or foreign one is replaced by an
empty one, with a warning).

Version dispatch (`build_plan`): TensorRT 10 (JetPack 6) builds FP16 with `BuilderFlag.FP16` and implicit INT8 with
a calibrator (deprecated); a Q/DQ model is built weakly typed with `INT8` + `FP16`, so the regions the Q/DQ recipe
leaves in float run in FP16 (strongly typed, TensorRT 10 would run them in FP32 and the "INT8" engine can be slower
than the FP16 one). TensorRT 11 has strongly typed networks only: FP16 comes from an FP16 ONNX (`cpgait export
--fp16`) and INT8 from a Q/DQ ONNX (`cpgait calibrate`), whose float regions keep the model's (FP32) types.
tensorrt is imported only inside the functions that build or read an engine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.cuda import cuda_check, cuda_mismatch, cuda_runtime
from cpgait.runtime.backends.model_file import model_kind
from cpgait.runtime.core.atomic import write_atomic
from cpgait.runtime.core.contract import ModelContract

log = logging.getLogger(__name__)

ENGINE_FORMAT = "cpgait.engine/2"  # 2: device with SM count and memory, engine sha256 in the side-car
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
    """What an engine is bound to: TensorRT version, GPU name, compute capability, SM count and memory (GiB,
    rounded: on a Jetson it is the shared system memory, which tells an Orin Nano 8 GB from an AGX Orin 64 GB)."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    multiprocessors: int
    memory_gib: int

    def __post_init__(self) -> None:
        if not (isinstance(self.multiprocessors, int) and self.multiprocessors > 0):
            raise CpgaitError(f"device {self.gpu_name}: {self.multiprocessors!r} SMs; expected a positive count")
        if not (isinstance(self.memory_gib, int) and self.memory_gib >= 0):
            raise CpgaitError(f"device {self.gpu_name}: memory {self.memory_gib!r} GiB; expected a whole number")

    def describe(self) -> str:
        return (
            f"{self.gpu_name} (sm {self.compute_capability}, {self.multiprocessors} SMs, {self.memory_gib} GiB) "
            f"with TensorRT {self.tensorrt_version}"
        )

    def digest(self) -> str:
        """Short stable hash of the device (names the per-device timing cache)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


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
    """The cache key of an engine: model hash + precision + profile + the device (TensorRT version, GPU, compute
    capability, SM count, memory)."""
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
        if legacy:  # weakly typed: the Q/DQ regions in INT8, the float regions free to run in FP16
            return BuildPlan(strongly_typed=False, builder_flags=("INT8", "FP16"), needs_calibrator=False)
        return BuildPlan(strongly_typed=False, builder_flags=(), needs_calibrator=False)
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


def tensorrt_major(trt: Any) -> int:
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
            "TensorRT is not installed here: engines are built on the target device (JetPack ships TensorRT: use a "
            "virtualenv made with --system-site-packages; on a workstation install the `tensorrt-cu12` or "
            "`tensorrt-cu13` extra for the driver's CUDA version). The ONNX and INT8 ONNX models run on ONNX Runtime."
        ) from None
    return tensorrt


def write_sidecar(path: Path, key: EngineKey, contract_json: str, engine: bytes) -> None:
    """The side-car of an engine (written atomically, after the engine: its presence means the engine is whole)."""
    data = {
        "format": ENGINE_FORMAT,
        "key": key.to_dict(),
        "contract": json.loads(contract_json),
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
        "engine_bytes": len(engine),
    }
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True).encode())


def _sidecar(engine_path: str | Path) -> dict:
    side = Path(engine_path).with_suffix(".json")
    if not side.is_file():
        raise CpgaitError(f"{engine_path}: no side-car {side.name}; build engines with `cpgait build`")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != ENGINE_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CpgaitError(
                f"{side}: format {found!r}; expected {ENGINE_FORMAT!r} (an engine from an older cpgait: rebuild "
                "it with `cpgait build`)"
            )
        EngineKey.from_dict(data["key"])
        str(data["engine_sha256"]), int(data["engine_bytes"])
        data["contract"]
        return data
    except (ValueError, KeyError, TypeError, AttributeError, OSError, OverflowError, RecursionError) as exc:
        raise CpgaitError(f"{side}: not a cpgait engine side-car ({exc.__class__.__name__}: {exc})") from None


def read_sidecar(engine_path: str | Path) -> tuple[EngineKey, dict]:
    """Key and contract of an engine, from its side-car JSON."""
    data = _sidecar(engine_path)
    return EngineKey.from_dict(data["key"]), data["contract"]


def read_engine_bytes(engine_path: str | Path) -> bytes:
    """The engine's bytes, checked against the size and sha256 its side-car recorded (a truncated or replaced
    engine is refused here, before TensorRT deserialises it)."""
    engine_path = Path(engine_path)
    data = _sidecar(engine_path)
    if not engine_path.is_file():
        raise CpgaitError(f"{engine_path}: no such engine file")
    blob = engine_path.read_bytes()
    if len(blob) != data["engine_bytes"] or hashlib.sha256(blob).hexdigest() != data["engine_sha256"]:
        raise CpgaitError(
            f"{engine_path}: {len(blob)} bytes that do not match its side-car ({data['engine_bytes']} bytes, sha256 "
            f"{data['engine_sha256'][:12]}): the file is truncated or was replaced; rebuild it with `cpgait build`"
        )
    return blob


def check_engine_device(engine_path: str | Path, key: EngineKey, here: DeviceInfo) -> None:
    """Refuse an engine built for another GPU, compute capability or TensorRT version, saying how to rebuild."""
    if key.device != here:
        raise CpgaitError(
            f"{engine_path}: built for {key.device.describe()}, but this is {here.describe()}; "
            f"engines do not move between devices: rebuild it here with `cpgait build MODEL.onnx --precision "
            f"{key.precision} --batch {key.profile}`"
        )


def current_device() -> DeviceInfo:
    """TensorRT version, name, compute capability, SM count and memory of CUDA device 0 (needs tensorrt and
    cuda-python); a cuda-python newer than the driver is named as such, not as "no usable CUDA device"."""
    trt = import_tensorrt()
    mismatch = cuda_mismatch()
    if mismatch:
        raise CpgaitError(mismatch)
    cudart = cuda_runtime()
    try:
        props = cuda_check(cudart.cudaGetDeviceProperties(0))
    except RuntimeError as exc:  # no GPU, no driver, or a driver too old for this CUDA
        raise CpgaitError(f"no usable CUDA device for TensorRT ({exc})") from None
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return DeviceInfo(
        str(trt.__version__),
        name.strip("\x00 "),
        f"{props.major}.{props.minor}",
        int(props.multiProcessorCount),
        round(int(props.totalGlobalMem) / 2**30),
    )


def cached_engine(engine_path: Path, key: EngineKey) -> bool:
    """Whether `engine_path` is a whole engine for exactly `key`; a broken or foreign one is reported (and then
    rebuilt by the caller)."""
    if not engine_path.exists() and not engine_path.with_suffix(".json").exists():
        return False
    try:
        found, _ = read_sidecar(engine_path)
        if found != key:
            raise CpgaitError(f"{engine_path.with_suffix('.json')}: its key is not this build's")
        read_engine_bytes(engine_path)
    except CpgaitError as exc:
        log.warning("rebuilding the cached engine: %s", exc)
        return False
    return True


def timing_cache_path(out_dir: str | Path, device: DeviceInfo) -> Path:
    """One timing cache per device in an engine folder (a folder shared by two devices keeps both)."""
    return Path(out_dir) / f"timing.{device.digest()}.cache"


def attach_timing_cache(config: Any, path: Path) -> bool:
    """Give the builder the timing cache at `path`; a corrupt, truncated or foreign cache is reported and replaced
    by an empty one. Returns whether the builder has a timing cache at all."""
    blob = path.read_bytes() if path.is_file() else b""
    if blob and _set_timing_cache(config, blob):
        return True
    if blob:
        log.warning("%s: unreadable, truncated or from another device/TensorRT; starting an empty timing cache", path)
    if _set_timing_cache(config, b""):
        return True
    log.warning("TensorRT refused an empty timing cache; building without one")
    return False


def _set_timing_cache(config: Any, blob: bytes) -> bool:
    try:
        cache = config.create_timing_cache(blob)
    except (RuntimeError, TypeError, ValueError):  # the bindings raise on some malformed blobs
        return False
    return cache is not None and bool(config.set_timing_cache(cache, ignore_mismatch=False))


def save_timing_cache(config: Any, path: Path) -> None:
    """Write the builder's timing cache atomically; a missing cache or a failed write is only a warning (the engine
    is already in place)."""
    cache = config.get_timing_cache()
    if cache is None:
        log.warning("TensorRT returned no timing cache; %s was not updated", path)
        return
    try:
        write_atomic(path, bytes(cache.serialize()))
    except OSError as exc:
        log.warning("%s: could not save the timing cache (%s)", path, exc.strerror or exc)


def profile_shapes(name: str, shape: tuple[int, ...], profile: Profile) -> tuple[tuple[int, ...], ...]:
    """min/opt/max shapes of one network input: a fixed batch is the only shape there is; a dynamic batch spans
    the profile; any other dynamic dimension is refused (cpgait models have one window and one image size)."""
    if any(d < 0 for d in shape[1:]):
        raise CpgaitError(
            f"input {name!r}: shape {tuple(shape)} has a dynamic dimension besides the batch; cpgait builds engines "
            "with only the batch dimension dynamic (export the model with fixed window/image sizes)"
        )
    if shape[0] >= 0:
        return shape, shape, shape
    rest = tuple(shape[1:])
    return (profile.min, *rest), (profile.opt, *rest), (profile.max, *rest)


def build_engine(
    model_path: str | Path,
    precision: str,
    profile: Profile,
    out_dir: str | Path,
    workspace_mb: int = 1024,
    calibrator: Callable[[int], Any] | None = None,
    overwrite: bool = False,
    require_contract: bool = True,
) -> Path:
    """Build (or reuse from `out_dir`) an engine for this device; returns the engine path.

    The model's contract goes into the side-car; without `require_contract` a model that has none (a pose model)
    gets a side-car with `"contract": null`. Inputs with a fixed batch size (the pose models) are built for that
    size only; the others get `profile`.

    A per-device timing cache (`timing_cache_path`) is read before and written after every build, so rebuilding
    other precisions or profiles on the same device is faster. `calibrator(batch)` makes the TensorRT 10
    implicit-INT8 calibrator (the caller builds it, e.g. `cpgait.calibration.trt_calibrator.make_entropy_calibrator`);
    its device memory is freed (`free()`) when the build ends, whatever the outcome.
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
    device = current_device()
    key = engine_key(file_sha256(model_path), precision, profile, device)
    engine_path, side_path = engine_paths(out_dir, model_path, key)
    # TensorRT 10's implicit INT8 also depends on the calibration cache and windows, which the key does not hold:
    # such a build never reuses an engine
    if not overwrite and not plan.needs_calibrator and cached_engine(engine_path, key):
        return engine_path  # the cache hit: same model, precision, profile and device, engine whole
    if plan.needs_calibrator and calibrator is None:
        raise CpgaitError(
            "implicit INT8 on TensorRT 10 needs --calib-cache FILE (read if it was made for this model and data, "
            "written from --data windows otherwise)"
        )
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
        opt_profile.set_shape(tensor.name, *profile_shapes(tensor.name, tuple(tensor.shape), profile))
    config.add_optimization_profile(opt_profile)
    timing_path = timing_cache_path(out, device)
    timed = attach_timing_cache(config, timing_path)
    calib = calibrator(profile.opt) if plan.needs_calibrator and calibrator is not None else None
    try:
        if calib is not None:
            config.int8_calibrator = calib
            config.set_calibration_profile(opt_profile)
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calib is not None:
            calib.free()
    if serialized is None:
        raise CpgaitError(f"{model_path}: TensorRT could not build a {precision} engine (see the log above)")
    blob = bytes(serialized)
    write_atomic(engine_path, blob)
    write_sidecar(side_path, key, contract_json, blob)  # last: a side-car means the engine before it is whole
    if timed:
        save_timing_cache(config, timing_path)
    return engine_path


def load_engine(engine_path: str | Path, here: DeviceInfo | None = None) -> tuple[bytes, dict]:
    """Serialized engine bytes and contract, after checking the engine was built for this device and is whole."""
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        raise CpgaitError(f"{engine_path}: no such engine file")
    key, contract = read_sidecar(engine_path)
    check_engine_device(engine_path, key, here or current_device())
    return read_engine_bytes(engine_path), contract
