"""What a model file is, read from the file: its format (ONNX, TensorRT engine, PyTorch checkpoint) and precision.

The precision of an ONNX file comes from its graph, not its name: QuantizeLinear nodes make it a Q/DQ (int8)
model, float16 initializers an FP16 one. Reading the graph needs the `onnx` package (the export and tensorrt
extras); the kiosk's ONNX Runtime path never asks.
"""

from __future__ import annotations

from pathlib import Path

from cpgait.errors import CpgaitError

FORMATS = {".onnx": "onnx", ".plan": "engine", ".engine": "engine", ".pt": "checkpoint", ".pth": "checkpoint"}
PRECISIONS = ("fp32", "fp16", "int8")


def model_format(path: str | Path) -> str:
    """'onnx', 'engine' or 'checkpoint' for a model file, by its suffix; anything else is a user error."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise CpgaitError(f"{path}: unknown model file type; expected one of {', '.join(FORMATS)}")
    return fmt


def model_kind(path: str | Path) -> str:
    """'qdq' when the ONNX graph holds QuantizeLinear nodes, 'fp16' when it holds float16 weights, else 'fp32'."""
    try:
        import onnx
    except ImportError:
        raise CpgaitError(
            f"{path}: reading an ONNX graph needs the onnx package (`pip install onnx`, or the export extra)"
        ) from None
    if not Path(path).is_file():
        raise CpgaitError(f"{path}: no such ONNX model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf's DecodeError and others for a file that is not ONNX
        raise CpgaitError(f"{path}: not an ONNX model ({exc})") from None
    if any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        return "qdq"
    if any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


def precision_of(path: str | Path) -> str:
    """The precision an ONNX file computes in: 'int8' (Q/DQ), 'fp16' or 'fp32', read from its graph."""
    return {"qdq": "int8", "fp16": "fp16", "fp32": "fp32"}[model_kind(path)]
