import onnx

from cpgait.calibration.pose_quantize import POSE_LANDMARK_MODELS, keypoint_gate, quantize_landmarks, walker_crops
from cpgait.calibration.quantize import QuantizeSettings
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.pose.interface import asset

for pose in ["blazepose", "blazepose-lite"]:
    crops = walker_crops([".cache/demo.mp4"], pose)
    cal, held = crops[0::2], crops[1::2]
    for recipe in ["ort", "tensorrt"]:
        q = quantize_landmarks(asset(POSE_LANDMARK_MODELS[pose]), cal, QuantizeSettings(recipe=recipe))
        path = f"/tmp/ps/{pose}-{recipe}.int8.onnx"
        onnx.save(q, path)
        r = keypoint_gate(OnnxRuntimeRunner(asset(POSE_LANDMARK_MODELS[pose])), OnnxRuntimeRunner(path), held)
        print(pose, recipe, len(cal), r.summary(), flush=True)
