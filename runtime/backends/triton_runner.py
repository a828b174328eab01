"""The classifier on a Triton Inference Server: `cpgait run --backend triton --triton-url HOST:PORT`.

The model file given to the runner stays the source of the contract (the session needs it before the first
window); the server must serve the same model under the name `cpgait export --triton` gave it (the file's stem,
dots as underscores). Inputs and outputs are read from the server's model metadata and checked against the
contract, so a server holding another model fails before the first frame. "host:port" speaks gRPC (Triton's
8001), "http://host:port" HTTP (8000). tritonclient is imported only here, when the runner is activated. Each
thread gets its own client: the HTTP one (gevent) refuses to be used from another thread than its creator's, and
the live loop activates the runner in one thread and infers in another.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.tensors import TensorSpec

DEFAULT_URL = "localhost:8001"
_TYPES: dict[str, np.dtype] = {"FP32": np.dtype(np.float32), "FP16": np.dtype(np.float16)}


def served_name(model: str | Path) -> str:
    """The name under which a classifier file is served (`cpgait export --triton` writes it so)."""
    return Path(model).stem.replace(".", "_")


class TritonRunner(Runner):
    """A remote runner: each `infer` is one request to the server (which may batch it with other kiosks')."""

    name = "triton"

    def __init__(self, model: str | Path, url: str = DEFAULT_URL, model_name: str | None = None) -> None:
        super().__init__()
        self.model = Path(model)
        self.url = url
        self.model_name = model_name or served_name(model)
        self._module: Any = None  # tritonclient.grpc or tritonclient.http
        self._target = ""
        self._local = threading.local()

    def _activate(self) -> None:
        http = self.url.startswith(("http://", "https://"))
        try:
            if http:
                import tritonclient.http as module
            else:
                import tritonclient.grpc as module
        except ImportError:
            raise CpgaitError("the triton backend needs tritonclient: pip install 'cpgait[serve]'") from None
        self.contract = ModelContract.from_onnx(self.model)
        target = self.url.split("://", 1)[1] if http else self.url
        where = f"Triton server {self.url}"
        self._module, self._target = module, target
        try:
            client = self._client()
            if not client.is_server_live():
                raise CpgaitError(f"{where}: not live")
            if not client.is_model_ready(self.model_name):
                raise CpgaitError(
                    f"{where}: model {self.model_name!r} is not ready (is it in the server's repository?)"
                )
            meta = client.get_model_metadata(self.model_name)
        except CpgaitError:
            raise
        except Exception as exc:  # tritonclient raises its own exception types (and gRPC/HTTP ones) when unreachable
            raise CpgaitError(f"{where}: cannot be reached ({str(exc).strip().splitlines()[0]})") from None
        if not isinstance(meta, dict):  # gRPC returns a protobuf message, HTTP a dict
            from google.protobuf.json_format import MessageToDict

            meta = MessageToDict(meta, preserving_proto_field_name=True)
        specs = []
        for tensor in meta.get("inputs", []):
            if tensor["datatype"] not in _TYPES:
                raise CpgaitError(f"{where}: input {tensor['name']} is {tensor['datatype']}; cpgait feeds FP32/FP16")
            shape = tuple(None if int(d) < 0 else int(d) for d in tensor["shape"])
            specs.append(TensorSpec(tensor["name"], _TYPES[tensor["datatype"]], shape))
        expected = {s.name: s.shape for s in self.contract.input_specs()}
        if {s.name: s.shape for s in specs} != expected:
            raise CpgaitError(
                f"{where}: model {self.model_name!r} takes {[(s.name, s.shape) for s in specs]}; "
                f"{self.model} takes {list(expected.items())}"
            )
        self._specs = specs
        self._outputs = [t["name"] for t in meta.get("outputs", [])]

    def _client(self):
        """This thread's client (made on first use)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._module.InferenceServerClient(self._target)
        return client

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = []
        for spec in self._specs:
            value = np.ascontiguousarray(feed[spec.name])
            tensor = self._module.InferInput(
                spec.name, list(value.shape), "FP32" if value.dtype == np.float32 else "FP16"
            )
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        outputs = [self._module.InferRequestedOutput(name) for name in self._outputs]
        try:
            result = self._client().infer(self.model_name, inputs, outputs=outputs)
        except Exception as exc:
            raise CpgaitError(
                f"Triton server {self.url}: inference failed ({str(exc).strip().splitlines()[0]})"
            ) from None
        return {name: result.as_numpy(name) for name in self._outputs}

    def _deactivate(self) -> None:
        self._local = threading.local()  # the clients close when collected
