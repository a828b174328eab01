"""The workstation side: synthetic data, importers, the dual-stream model, training, evaluation, Grad-CAM and ONNX
export. torch is imported by the modules that need it, never by this package's `__init__`."""
