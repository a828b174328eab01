"""The model contract: what a model expects of its input, carried by every checkpoint, ONNX file and engine.

The checkpoint holds it; `cpgait export` writes it as JSON into the ONNX file's metadata (key `cpgait.contract`);
an engine carries it in a side-car JSON. The runtime reads it and refuses a pose model, source or configuration
that contradicts it, with a message that names both values.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from cpgait import __version__
from cpgait.errors import CpgaitError
from cpgait.runtime.core.files import parse_json
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.core.tensors import TensorSpec

METADATA_KEY = "cpgait.contract"
CONTRACT_FORMAT = "cpgait.contract/1"
STREAMS = ("fused", "skeleton", "gait")
DEFAULT_CLASSES = ("GMFCS I", "GMFCS II", "GMFCS III", "GMFCS IV")
MAX_WINDOW = 10_000  # frames


RecordT = TypeVar("RecordT")


def record_from_dict(cls: type[RecordT], data: dict, where: str, what: str) -> RecordT:
    """A validated dataclass record from a stored dict; unknown or missing fields and bad values name `where`."""
    unknown = sorted(set(data) - {f.name for f in fields(cls)})  # type: ignore[arg-type]  # cls is a dataclass
    if unknown:
        raise CpgaitError(f"{where}: unknown {what} field(s) {', '.join(unknown)}")
    try:
        return cls(**data)
    except (TypeError, CpgaitError) as exc:
        raise CpgaitError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ModelContract:
    """Preprocessing and output contract of one trained model."""

    layout: str
    window: int
    fps: float
    series_features: tuple[str, ...]
    scalar_features: tuple[str, ...]
    feature_joints: tuple[str, ...]
    streams: str = "fused"
    class_names: tuple[str, ...] = DEFAULT_CLASSES
    normalisation: str = (
        "cpgait.features: gaps interpolated, smoothed, mid-hip centred, leg-length scaled, walking direction normalised"
    )
    output_name: str = "logits"  # the model's class-logits output `[N, classes]`
    training_data: str = "unknown"
    synthetic: bool = True
    cpgait_version: str = __version__
    format: str = CONTRACT_FORMAT

    def __post_init__(self) -> None:
        if not isinstance(self.layout, str):
            raise CpgaitError(f"model contract layout is {self.layout!r}; expected a layout name")
        get_layout(self.layout)
        if self.format != CONTRACT_FORMAT:
            raise CpgaitError(f"model contract format is {self.format!r}; this cpgait reads {CONTRACT_FORMAT!r}")
        window, fps = self.window, self.fps
        if not isinstance(window, numbers.Integral) or isinstance(window, bool) or not 2 <= window <= MAX_WINDOW:
            raise CpgaitError(f"model contract window is {window!r} frames; expected a whole number 2-{MAX_WINDOW}")
        if not isinstance(fps, numbers.Real) or isinstance(fps, bool) or not 0 < fps <= 1000:
            raise CpgaitError(f"model contract fps is {fps!r}; expected a number in (0, 1000]")
        if not isinstance(self.synthetic, bool):
            raise CpgaitError(f"model contract field synthetic is {self.synthetic!r}; expected true or false")
        object.__setattr__(self, "window", int(window))
        object.__setattr__(self, "fps", float(fps))
        if self.streams not in STREAMS:
            raise CpgaitError(f"model contract streams is {self.streams!r}; expected one of {', '.join(STREAMS)}")
        if self.streams != "skeleton" and not (self.series_features or self.scalar_features):
            raise CpgaitError(f"a {self.streams} model needs gait features; the contract lists none")
        if len(self.class_names) < 2:
            raise CpgaitError(f"model contract has {len(self.class_names)} class(es); expected at least 2")
        for name in ("series_features", "scalar_features", "feature_joints", "class_names"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise CpgaitError(f"model contract field {name} is {value!r}; expected a list of names")
            object.__setattr__(self, name, tuple(value))
        for name in ("output_name", "normalisation", "training_data", "cpgait_version"):
            if not isinstance(getattr(self, name), str):
                raise CpgaitError(f"model contract field {name} is {getattr(self, name)!r}; expected text")

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model's inputs, in order: skeleton and/or the gait stream's two tensors."""
        skeleton = ("skeleton",) if self.streams in ("fused", "skeleton") else ()
        gait = ("gait_series", "gait_scalars") if self.streams in ("fused", "gait") else ()
        return skeleton + gait

    @property
    def default_stride(self) -> int:
        """Frames between window starts unless a user asks otherwise: a quarter window (training, calibration and
        the kiosk alike)."""
        return max(1, self.window // 4)

    def input_specs(self) -> list[TensorSpec]:
        """The float32 inputs a model with this contract takes, batch dimension dynamic (skeleton is COCO-17)."""
        shapes = {
            "skeleton": (None, 3, self.window, 17),
            "gait_series": (None, len(self.series_features), self.window),
            "gait_scalars": (None, len(self.scalar_features)),
        }
        return [TensorSpec(name, np.dtype(np.float32), shapes[name]) for name in self.input_names]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, where: str = "model contract") -> ModelContract:
        return record_from_dict(cls, data, where, "contract")

    @classmethod
    def from_json(cls, text: str, where: str = "model contract") -> ModelContract:
        data = parse_json(text, where, "the model contract as a JSON object")
        if not isinstance(data, dict):
            raise CpgaitError(f"{where}: contract is a {type(data).__name__}; expected a JSON object")
        return cls.from_dict(data, where)

    @classmethod
    def read_onnx(cls, path: str | Path) -> ModelContract | None:
        """The contract in an ONNX file's metadata, or None when it has none (e.g. a pose model).

        Reads with onnxruntime only; no onnx package needed.
        """
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise CpgaitError(f"{path}: no such ONNX model file")
        try:
            meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
        except Exception as exc:  # onnxruntime's own exception types
            raise CpgaitError(f"{path}: not a loadable ONNX model ({exc})") from None
        text = meta.custom_metadata_map.get(METADATA_KEY)
        return None if text is None else cls.from_json(text, str(path))

    @classmethod
    def from_onnx(cls, path: str | Path) -> ModelContract:
        """The contract in an ONNX file's metadata; a file without one is a user error."""
        contract = cls.read_onnx(path)
        if contract is None:
            raise CpgaitError(
                f"{path}: has no cpgait model contract (metadata key {METADATA_KEY!r}); export it with `cpgait export`"
            )
        return contract

    def mismatches(self, other: ModelContract) -> list[str]:
        """Fields on which two contracts disagree, as 'field: ours vs theirs' (version and data note excluded)."""
        skip = {"cpgait_version", "training_data"}
        return [
            f"{f.name}: {getattr(self, f.name)!r} vs {getattr(other, f.name)!r}"
            for f in fields(self)
            if f.name not in skip and getattr(self, f.name) != getattr(other, f.name)
        ]

    def require_same(self, other: ModelContract, where: str) -> None:
        """Raise naming every mismatch when `other` (e.g. a file's contract) is not this model's."""
        diffs = self.mismatches(other)
        if diffs:
            raise CpgaitError(f"{where}: model contract does not match: " + "; ".join(diffs))

    def require_source(self, layout: str, where: str) -> None:
        """Refuse keypoints whose layout cannot feed this model (e.g. a COCO-17 pose model for a feet model)."""
        if layout != self.layout:
            raise CpgaitError(
                f"{where}: keypoints are in layout {layout!r} but the model was trained on {self.layout!r}"
                + (
                    " (it needs heel and toe points: use a pose model with feet, e.g. blazepose)"
                    if self.layout.endswith("_feet")
                    else ""
                )
            )
