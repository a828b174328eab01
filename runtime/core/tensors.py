"""What a model takes in: one input tensor's name, dtype and shape, and the check of a whole feed against them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
