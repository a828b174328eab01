"""Skeleton layouts (joint names, drawing edges), the ST-GCN graph for COCO-17, and layout conversions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cpgait.errors import CpgaitError


@dataclass(frozen=True)
class Layout:
    """A named list of joints and the edges drawn (and used as the skeleton graph) between them."""

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f"layout {self.name}: joint names must be unique")
        for a, b in self.edges:
            if not (0 <= a < len(self.joints) and 0 <= b < len(self.joints)) or a == b:
                raise ValueError(
                    f"layout {self.name}: edge ({a}, {b}) is not between two of its {len(self.joints)} joints"
                )

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of a joint by name, with an error that lists the names this layout has."""
        try:
            return self.joints.index(joint)
        except ValueError:
            raise CpgaitError(f"layout {self.name} has no joint {joint!r}; it has: {', '.join(self.joints)}") from None


COCO17 = Layout(
    "coco17",
    (
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    (
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (0, 5),
        (0, 6),
        (5, 6),
        (5, 7),
        (7, 9),
        (6, 8),
        (8, 10),
        (5, 11),
        (6, 12),
        (11, 12),
        (11, 13),
        (13, 15),
        (12, 14),
        (14, 16),
    ),
)

FEET = ("left_heel", "right_heel", "left_toe", "right_toe")

# COCO-17 followed by the four foot points, for sources that have them (BlazePose, BODY_25).
COCO17_FEET = Layout(
    "coco17_feet",
    COCO17.joints + FEET,
    COCO17.edges + ((15, 17), (16, 18), (15, 19), (16, 20), (17, 19), (18, 20)),
)

BLAZEPOSE33 = Layout(
    "blazepose33",
    (
        "nose",
        "left_eye_inner",
        "left_eye",
        "left_eye_outer",
        "right_eye_inner",
        "right_eye",
        "right_eye_outer",
        "left_ear",
        "right_ear",
        "mouth_left",
        "mouth_right",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_pinky",
        "right_pinky",
        "left_index",
        "right_index",
        "left_thumb",
        "right_thumb",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "left_heel",
        "right_heel",
        "left_foot_index",
        "right_foot_index",
    ),
    (
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 7),
        (0, 4),
        (4, 5),
        (5, 6),
        (6, 8),
        (9, 10),
        (11, 12),
        (11, 13),
        (13, 15),
        (15, 17),
        (15, 19),
        (15, 21),
        (17, 19),
        (12, 14),
        (14, 16),
        (16, 18),
        (16, 20),
        (16, 22),
        (18, 20),
        (11, 23),
        (12, 24),
        (23, 24),
        (23, 25),
        (24, 26),
        (25, 27),
        (26, 28),
        (27, 29),
        (28, 30),
        (29, 31),
        (30, 32),
        (27, 31),
        (28, 32),
    ),
)

BODY25 = Layout(
    "body25",
    (
        "nose",
        "neck",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "mid_hip",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
        "left_big_toe",
        "left_small_toe",
        "left_heel",
        "right_big_toe",
        "right_small_toe",
        "right_heel",
    ),
    (
        (0, 1),
        (0, 15),
        (0, 16),
        (15, 17),
        (16, 18),
        (1, 2),
        (2, 3),
        (3, 4),
        (1, 5),
        (5, 6),
        (6, 7),
        (1, 8),
        (8, 9),
        (9, 10),
        (10, 11),
        (8, 12),
        (12, 13),
        (13, 14),
        (14, 19),
        (19, 20),
        (14, 21),
        (11, 22),
        (22, 23),
        (11, 24),
    ),
)

# OpenPose's older 18-point COCO model (it has a neck, no mid-hip).
COCO18 = Layout(
    "coco18",
    (
        "nose",
        "neck",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
    ),
    (
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
        (1, 5),
        (5, 6),
        (6, 7),
        (1, 8),
        (8, 9),
        (9, 10),
        (1, 11),
        (11, 12),
        (12, 13),
        (0, 14),
        (14, 16),
        (0, 15),
        (15, 17),
    ),
)

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (COCO17, COCO17_FEET, BLAZEPOSE33, BODY25, COCO18)}


def get_layout(name: str) -> Layout:
    """Look a layout up by name; an unknown name is a user error that lists the known ones."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise CpgaitError(f"unknown skeleton layout {name!r}; expected one of: {', '.join(LAYOUTS)}") from None


def _by_name(source: Layout, target_joints: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(source.index(j) for j in target_joints)


# Source index for each COCO-17 joint (and for the four foot points where the source has feet).
_TO_COCO17: dict[str, tuple[int, ...]] = {
    "coco17": tuple(range(17)),
    "coco17_feet": tuple(range(21)),
    # BODY_25 -> COCO-17: 0<-0, 1<-16, 2<-15, 3<-18, 4<-17, 5<-5, 6<-2, 7<-6, 8<-3, 9<-7, 10<-4, 11<-12, 12<-9,
    # 13<-13, 14<-10, 15<-14, 16<-11; feet: heels 21/24, big toes 19/22.
    "body25": (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11, 21, 24, 19, 22),
    "coco18": _by_name(COCO18, COCO17.joints),
    # BlazePose: feet are heels 29/30 and toes (foot index) 31/32.
    "blazepose33": _by_name(BLAZEPOSE33, COCO17.joints) + (29, 30, 31, 32),
}


def to_coco17(keypoints: np.ndarray, layout: str, keep_feet: bool = True) -> tuple[np.ndarray, str]:
    """Convert `[..., V, C]` keypoints of `layout` to COCO-17, or to `coco17_feet` when the source has feet.

    Returns the converted array and the name of its layout. Joints are selected, never invented.
    """
    lay = get_layout(layout)
    if keypoints.shape[-2] != lay.num_joints:
        raise CpgaitError(f"keypoints have {keypoints.shape[-2]} joints but layout {layout} has {lay.num_joints}")
    index = _TO_COCO17[layout]
    if not keep_feet or len(index) == 17:
        return keypoints[..., list(index[:17]), :], "coco17"
    return keypoints[..., list(index), :], "coco17_feet"


def stgcn_partitions(layout: Layout = COCO17) -> np.ndarray:
    """Spatial-configuration partition of Yan et al. (2018): `[3, V, V]` = root, closer to centre, farther.

    The centre is the hip midpoint, a virtual node joined to both hips, so a joint's distance to it is one more than
    its hop distance to the nearer hip. Each partition is column-normalised by the degree of the joint it aggregates
    into, as in the reference implementation, and entry `[k, i, j]` weights neighbour `i` of joint `j`.
    """
    v = layout.num_joints
    hop = np.full((v, v), np.inf)
    np.fill_diagonal(hop, 0)
    for a, b in layout.edges:
        hop[a, b] = hop[b, a] = 1
    for k in range(v):  # Floyd-Warshall: the graphs are tiny
        hop = np.minimum(hop, hop[:, [k]] + hop[[k], :])
    hips = [layout.index("left_hip"), layout.index("right_hip")]
    centre_distance = hop[:, hips].min(axis=1) + 1
    adjacency = (hop <= 1).astype(np.float64)
    degree = adjacency.sum(axis=0)
    normalised = adjacency / degree[None, :]
    parts = np.zeros((3, v, v), dtype=np.float32)
    for i in range(v):
        for j in range(v):
            if adjacency[i, j] == 0:
                continue
            if centre_distance[i] == centre_distance[j]:
                parts[0, i, j] = normalised[i, j]
            elif centre_distance[i] < centre_distance[j]:
                parts[1, i, j] = normalised[i, j]
            else:
                parts[2, i, j] = normalised[i, j]
    return parts
