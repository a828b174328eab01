"""Triton Python-backend model (copied as `model.py` by `cpgait export --triton … --triton-backend python`):
the classifier's ONNX file beside it, run with ONNX Runtime; the requests of one dynamic batch run as one batch.
Tensors cross to and from Triton through DLPack: the stub's `as_numpy` and `Tensor(name, array)` go through the
numpy C API the stub was built against and gave empty outputs and wrong inputs under numpy 2.

It runs inside Triton, whose `triton_python_backend_utils` it imports; cpgait itself never imports this file.
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        folder = Path(args["model_repository"]) / args["model_version"]
        config = json.loads(args["model_config"])
        self.inputs = [i["name"] for i in config["input"]]
        self.output = config["output"][0]["name"]
        self.session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])

    def execute(self, requests: list) -> list:
        feeds = [{n: np.from_dlpack(pb_utils.get_input_tensor_by_name(r, n)) for n in self.inputs} for r in requests]
        batch = {n: np.concatenate([f[n] for f in feeds]) for n in self.inputs}
        logits = self.session.run([self.output], batch)[0]
        sizes = np.cumsum([len(f[self.inputs[0]]) for f in feeds])[:-1]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor.from_dlpack(self.output, np.ascontiguousarray(part, dtype=np.float32))]
            )
            for part in np.split(logits, sizes)
        ]
