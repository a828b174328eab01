"""One small inference interface for every backend (modelled on Polygraphy's runners).

A runner is built cheaply, does its expensive set-up in `activate()`, runs `infer(feed) -> outputs` with numpy
arrays keyed by tensor name, and frees its resources in `deactivate()`; it is also a context manager. Inputs are
checked where they enter, so a wrong name, dtype or shape fails with a message that says what was expected.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cpgait.errors import CpgaitError


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of one model input; `None` in the shape marks a dynamic dimension."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    def check(self, value: np.ndarray) -> None:
        if not isinstance(value, np.ndarray):
            raise CpgaitError(f"input {self.name!r}: got {type(value).__name__}; expected a numpy array")
        if value.dtype != self.dtype:
            raise CpgaitError(f"input {self.name!r}: dtype {value.dtype}; expected {self.dtype}")
        if value.ndim != len(self.shape) or any(
            want is not None and got != want for got, want in zip(value.shape, self.shape)
        ):
            want = tuple("N" if d is None else d for d in self.shape)
            raise CpgaitError(f"input {self.name!r}: shape {tuple(value.shape)}; expected {want}")


def check_feed(feed: Mapping[str, np.ndarray], specs: Sequence[TensorSpec]) -> None:
    """Check that `feed` holds exactly the inputs in `specs`, each of the right dtype and shape."""
    want = {s.name for s in specs}
    if set(feed) != want:
        raise CpgaitError(f"inputs {sorted(feed)}; expected {sorted(want)}")
    for spec in specs:
        spec.check(feed[spec.name])


class Runner(abc.ABC):
    """Base of every backend: lazy activation, checked inputs, context-manager use."""

    name: str = "runner"

    def __init__(self) -> None:
        self.is_active = False

    def activate(self) -> "Runner":
        if not self.is_active:
            self._activate()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self) -> "Runner":
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference; activates on first use."""
        self.activate()
        check_feed(feed, self.input_specs())
        return self._infer(feed)

    @abc.abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """The inputs this model takes (available once active)."""

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def _deactivate(self) -> None:
        """Free resources; most backends need nothing beyond dropping references."""


_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(uint8)": np.dtype(np.uint8),
}


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime on the CPU (the embedded default) or any other execution provider list."""

    name = "ort-cpu"

    def __init__(
        self,
        model: str | Path | bytes,
        providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.providers = list(providers)
        self.threads = threads
        self.session = None

    def _activate(self) -> None:
        import onnxruntime as ort

        if not isinstance(self.model, bytes) and not Path(self.model).is_file():
            raise CpgaitError(f"{self.model}: no such ONNX model file")
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        model = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable or invalid files
            raise CpgaitError(f"{self.model if not isinstance(self.model, bytes) else 'model'}: ONNX Runtime "
                              f"could not load it ({exc})") from None
        self._specs = []
        for i in self.session.get_inputs():
            dtype = _ORT_DTYPES.get(i.type)
            if dtype is None:
                raise CpgaitError(f"input {i.name!r} has type {i.type}, which cpgait does not feed")
            self._specs.append(TensorSpec(i.name, dtype, tuple(d if isinstance(d, int) else None for d in i.shape)))
        self._outputs = [o.name for o in self.session.get_outputs()]

    def input_specs(self) -> list[TensorSpec]:
        self.activate()
        return self._specs

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self.session.run(self._outputs, dict(feed))))

    def _deactivate(self) -> None:
        self.session = None
