"""Inference backends behind one runner interface: ONNX Runtime, TensorRT (imported lazily) and their registry."""
