"""Every backend of the workstation: the runtime's (ONNX Runtime, TensorRT) and the PyTorch baseline.

The CLI and `cpgait-bench` take backend names from `BACKENDS`; importing it needs no torch (the torch runner imports
torch when it is activated).
"""

from __future__ import annotations

from cpgait.export.torch_runner import TORCH_BACKENDS
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS

BACKENDS = RUNTIME_BACKENDS.extended(TORCH_BACKENDS)
