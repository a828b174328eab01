"""What exports: the dual-stream model and its checkpoint, ONNX export with a parity check and an FP16 variant, and
the PyTorch runner every speed figure is a ratio against. torch is imported by the modules that need it, never by
this package's `__init__`."""
