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


def q(name, excl):
    out = f"/tmp/ps/s2_{name}.onnx"
    if not os.path.exists(out):
        quantize_static(
            pre,
            out,
            R(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=list(excl),
            extra_options={"WeightSymmetric": True},
        )
    return out


def sess(p):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    return ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])


def kps(s):
    return np.stack([s.run(["Identity"], {"input_1": x[None]})[0].reshape(39, 5)[:33, :2] for x in held])


ref = kps(sess(FP))
n = len(convs)
for a, b in [(48, 60), (60, 72), (72, 84), (84, 96)]:
    only = set(convs[a:b])
    p = q(f"{a}_{b}", [c for c in convs if c not in only])
    e = np.linalg.norm(kps(sess(p)) - ref, axis=2)
    print(
        "only convs",
        a,
        b,
        round(float(np.median(e)), 2),
        round(float(np.percentile(e, 95)), 2),
        convs[a][:60],
        flush=True,
    )
