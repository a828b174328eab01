"""INT8 post-training quantization (Q/DQ ONNX) and the accuracy gate. Imports onnx and onnxruntime, never torch."""
