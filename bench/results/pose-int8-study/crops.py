import numpy as np

from cpgait.runtime.live.capture import open_source
from cpgait.runtime.live.subject import SubjectPose
from cpgait.runtime.pose.catalog import load_pose_model

pose = load_pose_model("blazepose", "ort-cpu", threads=1)
crops = []
orig = pose.landmarks.infer


def rec(feeds):
    crops.append(next(iter(feeds.values()))[0].copy())
    return orig(feeds)


pose.landmarks.infer = rec
with open_source(".cache/demo.mp4", paced=False) as src:
    stage = SubjectPose(pose, src.size, pose.layout)
    for f in src:
        stage(f)
c = np.stack(crops)
print(c.shape, c.dtype)
np.save("/tmp/ps/crops.npy", (c * 255).round().astype(np.uint8))
