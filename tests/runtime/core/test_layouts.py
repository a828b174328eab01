"""Skeleton layouts: conversions to COCO-17 (by the published BODY_25 mapping) and the ST-GCN partitions."""

from __future__ import annotations

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import (
    BLAZEPOSE33,
    BODY25,
    COCO17,
    COCO17_FEET,
    COCO18,
    LAYOUTS,
    get_layout,
    stgcn_partitions,
    to_coco17,
)

# ../shared/ASSETS.md "Gait data": COCO-17 index <- BODY_25 index
BODY25_TO_COCO17 = {
    0: 0,
    1: 16,
    2: 15,
    3: 18,
    4: 17,
    5: 5,
    6: 2,
    7: 6,
    8: 3,
    9: 7,
    10: 4,
    11: 12,
    12: 9,
    13: 13,
    14: 10,
    15: 14,
    16: 11,
}


def _tagged(num_joints: int) -> np.ndarray:
    """`[2, V, 3]` keypoints whose x is the source joint index, so a conversion shows where each came from."""
    kp = np.zeros((2, num_joints, 3), dtype=np.float32)
    kp[..., 0] = np.arange(num_joints)
    kp[..., 1] = 100 + np.arange(num_joints)
    kp[..., 2] = 1.0
    return kp


def test_body25_to_coco17_follows_the_published_mapping_and_keeps_feet() -> None:
    out, name = to_coco17(_tagged(25), "body25")
    assert name == "coco17_feet" and out.shape == (2, 21, 3)
    assert {c: int(out[0, c, 0]) for c in range(17)} == BODY25_TO_COCO17
    feet = {COCO17_FEET.joints[17 + k]: BODY25.joints[int(out[1, 17 + k, 0])] for k in range(4)}
    assert feet == {
        "left_heel": "left_heel",
        "right_heel": "right_heel",
        "left_toe": "left_big_toe",
        "right_toe": "right_big_toe",
    }
    plain, plain_name = to_coco17(_tagged(25), "body25", keep_feet=False)
    assert plain_name == "coco17" and plain.shape == (2, 17, 3)


def test_conversions_keep_joint_names() -> None:
    for source in (BODY25, COCO18, BLAZEPOSE33):
        out, _ = to_coco17(_tagged(source.num_joints), source.name)
        for c, joint in enumerate(COCO17.joints):
            assert source.joints[int(out[0, c, 0])] == joint, (source.name, joint)


def test_blazepose33_to_coco17_with_feet() -> None:
    out, name = to_coco17(_tagged(33), "blazepose33")
    assert name == "coco17_feet" and out.shape == (2, 21, 3)
    assert [int(i) for i in out[0, 17:, 0]] == [29, 30, 31, 32]  # heels 29/30, toes (foot index) 31/32
    assert [int(i) for i in out[0, [0, 5, 6, 11, 12, 15, 16], 0]] == [0, 11, 12, 23, 24, 27, 28]


@pytest.mark.parametrize(
    "shape,layout,error",
    [
        ((2, 17, 3), "body25", "keypoints have 17 joints but layout body25 has 25"),
        ((2, 25, 3), "bodyy25", "unknown skeleton layout 'bodyy25'; expected one of: coco17"),
        ((2, 18, 3), "coco17", "keypoints have 18 joints but layout coco17 has 17"),
    ],
    ids=["joint count", "unknown layout", "coco18 data named coco17"],
)
def test_conversion_refuses_bad_input(shape: tuple[int, ...], layout: str, error: str) -> None:
    with pytest.raises(CpgaitError, match=error):
        to_coco17(np.zeros(shape, dtype=np.float32), layout)


def test_get_layout_lists_the_known_names() -> None:
    with pytest.raises(CpgaitError, match="expected one of: coco17, coco17_feet, blazepose33, body25, coco18"):
        get_layout("mpii")
    assert all(get_layout(name) is lay for name, lay in LAYOUTS.items())


@pytest.mark.parametrize("layout", [COCO17, COCO17_FEET])
def test_stgcn_partitions(layout) -> None:
    parts = stgcn_partitions(layout)
    v = layout.num_joints
    assert parts.shape == (3, v, v) and parts.dtype == np.float32
    np.testing.assert_allclose(parts.sum(axis=(0, 1)), np.ones(v), rtol=1e-6)  # each joint's weights sum to 1
    assert np.count_nonzero(parts.sum(axis=0)) == v + 2 * len(layout.edges)  # self-loops + both edge directions
    assert np.all((parts > 0).sum(axis=0) <= 1)  # each neighbour in exactly one partition
    hips = [layout.index("left_hip"), layout.index("right_hip")]
    # both hips are one hop from the centre: self-loops and the hip-hip edge are "root"
    for i in hips:
        for j in hips:
            assert parts[0, i, j] > 0 and parts[1, i, j] == 0 and parts[2, i, j] == 0
    knee, hip = layout.index("left_knee"), layout.index("left_hip")
    assert parts[1, hip, knee] > 0  # for the knee, the hip is closer to the centre
    assert parts[2, knee, hip] > 0  # for the hip, the knee is farther
    assert parts[0, knee, knee] > 0


def test_layout_rejects_bad_definitions() -> None:
    from cpgait.runtime.core.layouts import Layout

    with pytest.raises(ValueError, match="unique"):
        Layout("x", ("a", "a"), ())
    with pytest.raises(ValueError, match="edge"):
        Layout("x", ("a", "b"), ((0, 2),))
