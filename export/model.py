"""The dual-stream severity model: ST-GCN skeleton stream + gait-feature stream + two-way cross-attention.

Every op is chosen to export to plain ONNX (opset >= 17) that ONNX Runtime quantizes and TensorRT builds in INT8:
the graph convolution is MatMul with the fixed adjacency followed by a 1x1 Conv (never `einsum`, which ONNX Runtime
CPU runs about 4x slower and TensorRT cannot run in INT8), and attention is written out as Linear, MatMul and
Softmax. Only the batch dimension is dynamic; T and the feature counts are fixed by the config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import STREAMS, record_from_dict
from cpgait.runtime.core.layouts import COCO17, stgcn_partitions

# ST-GCN (Yan et al. 2018): ten blocks; the first 128- and the first 256-channel block halve the time axis.
STGCN_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
STGCN_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
SKELETON_CHANNELS = 3  # x, y, confidence
# Bone vectors (`ModelConfig.bones`): each joint minus its reference point, so that joints whose position the
# mid-hip centring makes nearly constant (the hips) still carry a signal: the hip's bone is the pelvis
# (hip - other hip), a shoulder's the trunk side (shoulder - same-side hip), the nose's the head (nose - mid-shoulder).
BONE_REFERENCE = {
    "nose": ("left_shoulder", "right_shoulder"),
    "left_eye": ("nose",),
    "right_eye": ("nose",),
    "left_ear": ("left_eye",),
    "right_ear": ("right_eye",),
    "left_shoulder": ("left_hip",),
    "right_shoulder": ("right_hip",),
    "left_elbow": ("left_shoulder",),
    "right_elbow": ("right_shoulder",),
    "left_wrist": ("left_elbow",),
    "right_wrist": ("right_elbow",),
    "left_hip": ("right_hip",),
    "right_hip": ("left_hip",),
    "left_knee": ("left_hip",),
    "right_knee": ("right_hip",),
    "left_ankle": ("left_knee",),
    "right_ankle": ("right_knee",),
}
GAIT_STRIDES = (1, 2, 2)  # the gait series conv stack downsamples time like the ST-GCN (T -> T/4)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the network's shape; stored in every checkpoint and compared on load."""

    streams: str = "fused"
    window: int = 124
    num_series: int = 0
    num_scalars: int = 0
    num_classes: int = 4
    width: float = 1.0
    temporal_kernel: int = 9
    embed_dim: int = 64
    heads: int = 4
    dropout: float = 0.1
    motion: bool = False  # add each joint's frame-to-frame displacement (x, y) as two input channels
    bones: bool = False  # add each joint's bone vector (x, y; see BONE_REFERENCE) as two input channels

    def __post_init__(self) -> None:
        if self.streams not in STREAMS:
            raise CpgaitError(f"model streams is {self.streams!r}; expected one of {', '.join(STREAMS)}")
        if self.window < 8:
            raise CpgaitError(f"model window is {self.window} frames; expected at least 8")
        if self.uses_gait and (self.num_series < 1 or self.num_scalars < 1):
            raise CpgaitError(
                f"a {self.streams} model needs at least one gait series and one gait scalar; "
                f"got {self.num_series} series and {self.num_scalars} scalars"
            )
        if self.num_classes < 2:
            raise CpgaitError(f"model has {self.num_classes} class(es); expected at least 2")
        if not 0 < self.width <= 4:
            raise CpgaitError(f"model width multiplier is {self.width}; expected 0 < width <= 4")
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise CpgaitError(f"temporal kernel is {self.temporal_kernel}; expected an odd number >= 1")
        if self.embed_dim < 1 or self.heads < 1 or self.embed_dim % self.heads:
            raise CpgaitError(f"embed_dim {self.embed_dim} must be a positive multiple of heads {self.heads}")
        if not 0 <= self.dropout < 1:
            raise CpgaitError(f"dropout is {self.dropout}; expected 0 <= dropout < 1")

    @property
    def uses_skeleton(self) -> bool:
        return self.streams in ("fused", "skeleton")

    @property
    def uses_gait(self) -> bool:
        return self.streams in ("fused", "gait")

    @property
    def channels(self) -> tuple[int, ...]:
        """ST-GCN block widths after the width multiplier (at least 4 channels each)."""
        return tuple(max(4, round(c * self.width)) for c in STGCN_CHANNELS)

    @property
    def skeleton_channels(self) -> int:
        """Channels the ST-GCN sees: x, y, confidence, plus motion and bone vectors when enabled (computed inside the
        network from x, y, so the model's input stays `[N, 3, T, 17]`)."""
        return SKELETON_CHANNELS + 2 * self.motion + 2 * self.bones

    @property
    def input_names(self) -> tuple[str, ...]:
        """Model inputs in forward order; the same names as `ModelContract.input_names`."""
        return (("skeleton",) if self.uses_skeleton else ()) + (
            ("gait_series", "gait_scalars") if self.uses_gait else ()
        )

    def input_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """Shape of each input for a batch; window_inputs() produces one sample of each without the batch axis."""
        shapes = {
            "skeleton": (batch, SKELETON_CHANNELS, self.window, COCO17.num_joints),
            "gait_series": (batch, self.num_series, self.window),
            "gait_scalars": (batch, self.num_scalars),
        }
        return {name: shapes[name] for name in self.input_names}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "model config") -> ModelConfig:
        return record_from_dict(cls, data, where, "model config")


class GraphConv(nn.Module):
    """Spatial graph convolution over K adjacency partitions: x @ (A_k * importance_k) per k, then one 1x1 Conv."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency)  # [K, V, V], entry [k, i, j]: neighbour i of joint j
        self.importance = nn.Parameter(torch.ones_like(adjacency))  # learnable edge importance
        self.conv = nn.Conv2d(in_channels * adjacency.shape[0], out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:  # [N, C, T, V] -> [N, C_out, T, V]
        weights = self.adjacency * self.importance  # type: ignore[operator]  # a registered buffer is a Tensor
        return self.conv(torch.cat([x @ weights[k] for k in range(weights.shape[0])], dim=1))


class StgcnBlock(nn.Module):
    """Graph conv, then BN-ReLU-temporal conv-BN, a residual and a ReLU (Yan et al. 2018; dropout is left to the
    attention and the head, where it is cheap)."""

    def __init__(self, c_in: int, c_out: int, adjacency: Tensor, kernel: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.gcn = GraphConv(c_in, c_out, adjacency)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, (kernel, 1), (stride, 1), (kernel // 2, 0)),
            nn.BatchNorm2d(c_out),
        )
        if not residual:
            self.residual: nn.Module | None = None
        elif c_in == c_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 1, (stride, 1)), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x))
        return self.relu(y if self.residual is None else y + self.residual(x))


def bone_matrix() -> Tensor:
    """`[V, V]` with column j averaging joint j's reference points: bones = xy - xy @ bone_matrix()."""
    out = torch.zeros(COCO17.num_joints, COCO17.num_joints)
    for joint, refs in BONE_REFERENCE.items():
        for ref in refs:
            out[COCO17.index(ref), COCO17.index(joint)] = 1.0 / len(refs)
    return out


class SkeletonStream(nn.Module):
    """ST-GCN: optional motion and bone channels, BatchNorm over (C * V) of the input, then the ten blocks.
    Output [N, C_last, T/4, V]."""

    bone_matrix: Tensor | None

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        adjacency = torch.from_numpy(stgcn_partitions(COCO17))
        self.motion = config.motion
        self.register_buffer("bone_matrix", bone_matrix() if config.bones else None)
        self.input_bn = nn.BatchNorm1d(config.skeleton_channels * COCO17.num_joints)
        blocks, c_in = [], config.skeleton_channels
        for i, (c_out, stride) in enumerate(zip(config.channels, STGCN_STRIDES)):
            blocks.append(StgcnBlock(c_in, c_out, adjacency, config.temporal_kernel, stride, residual=i > 0))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)

    def channels(self, x: Tensor) -> Tensor:
        """[N, 3, T, V] -> [N, C, T, V]: x, y, confidence, then motion (displacement from the previous frame, 0 at
        the first) and bones, each only where enabled. A missing joint is (0, 0) in x, y, so its motion and bone
        values are meaningless; its confidence 0 tells the network."""
        xy, parts = x[:, :2], [x]
        if self.motion:
            parts.append(torch.cat([torch.zeros_like(xy[:, :, :1]), xy[:, :, 1:] - xy[:, :, :-1]], dim=2))
        if self.bone_matrix is not None:
            parts.append(xy - xy @ self.bone_matrix)
        return torch.cat(parts, dim=1) if len(parts) > 1 else x

    def forward(self, x: Tensor) -> Tensor:  # [N, 3, T, V]
        x = self.channels(x)
        n, c, t, v = x.shape
        x = self.input_bn(x.permute(0, 1, 3, 2).reshape(n, c * v, t)).reshape(n, c, v, t).permute(0, 1, 3, 2)
        for block in self.blocks:
            x = block(x)
        return x


class GaitStream(nn.Module):
    """Per-frame gait series -> temporal 1-D convs -> one token per T/4 step; window scalars -> MLP -> one token."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, layers, c_in = config.embed_dim, [], config.num_series
        self.input_bn = nn.BatchNorm1d(config.num_series)
        for stride in GAIT_STRIDES:
            layers += [nn.Conv1d(c_in, d, 5, stride, 2), nn.BatchNorm1d(d), nn.ReLU()]
            c_in = d
        self.series = nn.Sequential(*layers)
        self.scalars = nn.Sequential(
            nn.BatchNorm1d(config.num_scalars), nn.Linear(config.num_scalars, d), nn.ReLU(), nn.Linear(d, d)
        )

    def forward(self, series: Tensor, scalars: Tensor) -> Tensor:  # [N, Fs, T], [N, Fc] -> [N, T/4 + 1, D]
        tokens = self.series(self.input_bn(series)).transpose(1, 2)
        return torch.cat([tokens, self.scalars(scalars).unsqueeze(1)], dim=1)


class CrossAttention(nn.Module):
    """Multi-head attention of `query` tokens over `context` tokens, then residual + LayerNorm.

    Written out (Linear, MatMul, Softmax) instead of nn.MultiheadAttention so the exported graph is plain
    MatMul/Softmax with fixed head shapes, which quantizers and TensorRT handle as ordinary ops.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def _split(self, x: Tensor) -> Tensor:  # [N, L, D] -> [N, H, L, D/H]
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        q, k, v = self._split(self.q(query)), self._split(self.k(context)), self._split(self.v(context))
        attention = torch.softmax((q @ k.transpose(2, 3)) * self.scale, dim=-1)
        mixed = (attention @ v).transpose(1, 2).reshape(query.shape)
        return self.norm(query + self.dropout(self.out(mixed)))


class SeverityModel(nn.Module):
    """GMFCS level classifier; `streams` selects the fused model or one of its two single-stream ablations.

    Inputs (batch axis first, names as in the model contract): skeleton [N, 3, T, 17], gait_series [N, Fs, T],
    gait_scalars [N, Fc] -- each only where the stream mode uses it. Output: logits [N, num_classes].
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        if config.uses_skeleton:
            self.skeleton = SkeletonStream(config)
            self.skeleton_proj = nn.Linear(config.channels[-1], d)
        if config.uses_gait:
            self.gait = GaitStream(config)
        if config.streams == "fused":
            self.skeleton_attends = CrossAttention(d, config.heads, config.dropout)
            self.gait_attends = CrossAttention(d, config.heads, config.dropout)
        pooled = 2 * d if config.streams == "fused" else d
        self.head = nn.Sequential(
            nn.Linear(pooled, d), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(d, config.num_classes)
        )

    def skeleton_tokens(self, skeleton: Tensor) -> Tensor:
        """ST-GCN output pooled over joints: one token per (downsampled) time step, [N, T/4, D]."""
        return self.skeleton_proj(self.skeleton(skeleton).mean(dim=3).transpose(1, 2))

    def forward(
        self, skeleton: Tensor | None = None, gait_series: Tensor | None = None, gait_scalars: Tensor | None = None
    ) -> Tensor:
        given = {"skeleton": skeleton, "gait_series": gait_series, "gait_scalars": gait_scalars}
        missing = [name for name in self.config.input_names if given[name] is None]
        if missing:
            raise CpgaitError(f"a {self.config.streams} model needs input(s) {', '.join(missing)}")
        if self.config.streams == "skeleton":
            assert skeleton is not None  # checked above
            return self.head(self.skeleton_tokens(skeleton).mean(dim=1))
        if self.config.streams == "gait":
            return self.head(self.gait(gait_series, gait_scalars).mean(dim=1))
        assert skeleton is not None  # checked above
        skel, gait = self.skeleton_tokens(skeleton), self.gait(gait_series, gait_scalars)
        fused_skel = self.skeleton_attends(skel, gait)
        fused_gait = self.gait_attends(gait, skel)
        return self.head(torch.cat([fused_skel.mean(dim=1), fused_gait.mean(dim=1)], dim=1))
