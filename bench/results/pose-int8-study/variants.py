import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

FP = "runtime/assets/blazepose_landmarks_full.onnx"
crops = np.load("/tmp/ps/crops.npy").astype(np.float32) / 255
calib, held = crops[::2][:62], crops[1::2]
pre = "/tmp/ps/pre.onnx"
if not os.path.exists(pre):
    quant_pre_process(FP, pre, skip_symbolic_shape=True)
m = onnx.load(pre)
convs = [n for n in m.graph.node if n.op_type == "Conv"]
dw = [n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
# output-producing convs: those whose output reaches graph outputs without another conv
outs = {o.name for o in m.graph.output}
prod = {o: n for n in m.graph.node for o in n.output}


def head_convs():
    res = set()
    for o in outs:
        stack = [o]
        seen = set()
        while stack:
            t = stack.pop()
            if t in seen or t not in prod:
                continue
            seen.add(t)
            n = prod[t]
            if n.op_type == "Conv":
                res.add(n.name)
                continue
            stack += list(n.input)
    return sorted(res)


head = head_convs()
print("convs", len(convs), "depthwise", len(dw), "head convs", head)


class R:
    def __init__(s):
        s.i = iter([{"input_1": c[None]} for c in calib])

    def get_next(s):
        return next(s.i, None)


def q(name, **kw):
    out = f"/tmp/ps/{name}.onnx"
    if os.path.exists(out):
        return out
    args = dict(
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    eo = kw.pop("extra", {})
    args.update(kw)
    args["extra_options"].update(eo)
    quantize_static(pre, out, R(), **args)
    return out


variants = {
    "plain_all_ops": q("plain_all_ops"),
    "conv_only": q("conv_only", op_types_to_quantize=["Conv"], extra={"QuantizeBias": False}),
    "conv_only_biasq": q("conv_only_biasq", op_types_to_quantize=["Conv"]),
    "conv_u8asym": q(
        "conv_u8asym",
        op_types_to_quantize=["Conv"],
        activation_type=QuantType.QUInt8,
        extra={"ActivationSymmetric": False},
    ),
    "conv_nodw": q("conv_nodw", op_types_to_quantize=["Conv"], nodes_to_exclude=dw, extra={"QuantizeBias": False}),
    "conv_nohead": q(
        "conv_nohead", op_types_to_quantize=["Conv"], nodes_to_exclude=head, extra={"QuantizeBias": False}
    ),
    "conv_u8_nohead": q(
        "conv_u8_nohead",
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=head,
        activation_type=QuantType.QUInt8,
        extra={"ActivationSymmetric": False},
    ),
    "qop_u8_nohead": q(
        "qop_u8_nohead",
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=head,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra={"ActivationSymmetric": False},
    ),
}


def sess(p):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    return ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])


def kps(s, X):
    r = []
    for x in X:
        out = s.run(["Identity"], {"input_1": x[None]})[0]
        r.append(out.reshape(39, 5)[:33, :2])
    return np.stack(r)


ref_s = sess(FP)
ref = kps(ref_s, held)
sessions = {"fp32": ref_s, **{k: sess(v) for k, v in variants.items()}}
x = held[:1]
times = {k: [] for k in sessions}
for _round in range(int(sys.argv[1]) if len(sys.argv) > 1 else 15):
    for k, s in sessions.items():
        t = time.perf_counter()
        s.run(None, {"input_1": x})
        times[k].append(time.perf_counter() - t)
res = {}
for k, s in sessions.items():
    e = np.linalg.norm(kps(s, held) - ref, axis=2) if k != "fp32" else np.zeros(1)
    ts = np.array(times[k][2:]) * 1e3
    res[k] = dict(
        ms=round(float(np.median(ts)), 2),
        ratio=round(float(np.median(ts) / np.median(np.array(times["fp32"][2:]) * 1e3)), 2),
        med_px=round(float(np.median(e)), 2),
        p95_px=round(float(np.percentile(e, 95)), 2),
    )
    print(k, res[k], flush=True)
