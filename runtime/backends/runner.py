"""One small inference interface for every backend (modelled on Polygraphy's runners).

A runner is built cheaply, does its expensive set-up in `activate()`, runs `infer(feed) -> outputs` with numpy
arrays keyed by tensor name, and frees its resources in `deactivate()`; it is also a context manager. Inputs are
checked where they enter, so a wrong name, dtype or shape fails with a message that says what was expected.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import numpy as np

from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.tensors import TensorSpec, check_feed


class Runner(abc.ABC):
    """Base of every backend: lazy activation, checked inputs, context-manager use.

    `_activate` sets `_specs` (the inputs), `_outputs` (the output names) and `contract` (the model contract the
    file carries; None for a model without one, such as a pose model) once the model is loaded.
    """

    name: str = "runner"

    def __init__(self) -> None:
        self.is_active = False
        self._specs: list[TensorSpec] = []
        self._outputs: list[str] = []
        self.contract: ModelContract | None = None

    def activate(self) -> Runner:
        if not self.is_active:
            self._activate()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def input_specs(self) -> list[TensorSpec]:
        """The inputs this model takes (activates the runner)."""
        self.activate()
        return list(self._specs)

    def output_names(self) -> list[str]:
        """The outputs this model returns, in order (activates the runner)."""
        self.activate()
        return list(self._outputs)

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference; activates on first use."""
        self.activate()
        check_feed(feed, self._specs)
        return self._infer(feed)

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def _deactivate(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Free resources; most backends need nothing beyond dropping references."""
