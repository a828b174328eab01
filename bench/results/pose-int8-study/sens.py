import os

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

FP = "runtime/assets/blazepose_landmarks_full.onnx"
pre = "/tmp/ps/pre.onnx"
crops = np.load("/tmp/ps/crops.npy").astype(np.float32) / 255
calib, held = crops[::2][:62], crops[1::2][:25]
m = onnx.load(pre)
convs = [n.name for n in m.graph.node if n.op_type == "Conv"]


class R:
    def __init__(s):
        s.i = iter([{"input_1": c[None]} for c in calib])

    def get_next(s):
        return next(s.i, None)


def q(name, ops=("Conv",), excl=(), method=CalibrationMethod.MinMax, act=QuantType.QUInt8, sym=False, extra=None):
    out = f"/tmp/ps/s_{name}.onnx"
    if not os.path.exists(out):
        eo = {"ActivationSymmetric": sym, "WeightSymmetric": True}
        eo.update(extra or {})
        quantize_static(
            pre,
            out,
            R(),
            quant_format=QuantFormat.QDQ,
            activation_type=act,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=method,
            op_types_to_quantize=list(ops),
            nodes_to_exclude=list(excl),
            extra_options=eo,
        )
    return out


def sess(p):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    return ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])


def kps(s):
    return np.stack([s.run(["Identity"], {"input_1": x[None]})[0].reshape(39, 5)[:33, :2] for x in held])


ref = kps(sess(FP))
half = len(convs) // 2
V = {
    "u8_first_half_only": q("u8_first_half", excl=convs[half:]),
    "u8_second_half_only": q("u8_second_half", excl=convs[:half]),
    "u8_first_conv_float": q("u8_first_float", excl=convs[:1]),
    "u8_percentile": q("u8_pct", method=CalibrationMethod.Percentile, extra={"CalibPercentile": 99.99}),
    "u8_conv_clip_add": q("u8_cca", ops=("Conv", "Clip", "Add")),
    "u8_weights_only?per_tensor": None,
}
for k, p in V.items():
    if p is None:
        continue
    e = np.linalg.norm(kps(sess(p)) - ref, axis=2)
    print(k, round(float(np.median(e)), 2), round(float(np.percentile(e, 95)), 2), flush=True)
