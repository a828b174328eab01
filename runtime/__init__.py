"""What runs on the kiosk: layouts, sequences, gait features, runners, pose, capture and the live loop.

Imports numpy, OpenCV and onnxruntime only; never torch, and tensorrt only inside the functions that need it.
"""
