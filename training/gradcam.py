"""`cpgait explain`: which joints the ST-GCN relies on, by Grad-CAM on one of its blocks.

For each window: activations A `[C, T', V]` of the chosen ST-GCN block (the last by default, as the study; an
earlier one with `--layer`, because ten graph convolutions mix every joint with its neighbours) and the gradients G
of the target class logit (the true class by default); channel weights w_c = mean of G over T' and V;
cam = relu(sum_c w_c A_c), summed over time -> one value per joint, then divided by its sum so every window counts
once. Measured (tests/training/test_gradcam.py): in a model where one joint alone carries the class, blocks 1-3
rank that joint first and the last block does not (it ranked 6th), so prefer an early block to choose joints.
The ranking is the mean over correctly classified windows (overall and per class), scaled so that the top
joint is 1, saved with the explained checkpoint's SHA-256. Its JSON feeds `cpgait train --feature-joints FILE
--top-k K`, which keeps the gait features computable from the top K joints and starts the ST-GCN from the
explained checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from cpgait.errors import CpgaitError, atomic_output, refuse_overwrite
from cpgait.export.checkpoint import load_checkpoint
from cpgait.export.model import SeverityModel
from cpgait.runtime.core.layouts import COCO17
from cpgait.runtime.data.dataset import Dataset
from cpgait.runtime.data.windows import build_windows
from cpgait.training.evaluate import split_records
from cpgait.training.train import file_sha256, pick_device

RANKING_FORMAT = "cpgait.joint_ranking/1"
TARGETS = ("true", "predicted")


def gradcam(
    model: SeverityModel,
    inputs: dict[str, np.ndarray],
    labels: np.ndarray,
    target: str = "true",
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    layer: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-window joint importance `[W, V]` (each row sums to 1, or is 0) and the predicted classes `[W]`.

    `layer`: the ST-GCN block, 1 = first ... len(blocks) = last (the default)."""
    if not model.config.uses_skeleton:
        raise CpgaitError(f"a {model.config.streams} model has no ST-GCN stream to explain")
    if target not in TARGETS:
        raise CpgaitError(f"--target is {target!r}; expected one of {', '.join(TARGETS)}")
    blocks = model.skeleton.blocks
    layer = len(blocks) if layer is None else layer
    if not 1 <= layer <= len(blocks):
        raise CpgaitError(f"--layer is {layer}; the ST-GCN has blocks 1..{len(blocks)}")
    model.eval()
    captured: dict[str, torch.Tensor] = {}

    def keep(_module: torch.nn.Module, _args: object, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["activations"] = output

    hook = blocks[layer - 1].register_forward_hook(keep)
    cams, preds = [], []
    try:
        for start in range(0, len(labels), batch_size):
            batch = {k: torch.from_numpy(v[start : start + batch_size]).to(device) for k, v in inputs.items()}
            model.zero_grad(set_to_none=True)
            logits = model(**batch)
            pred = logits.argmax(1)
            cls = torch.from_numpy(labels[start : start + batch_size]).to(device) if target == "true" else pred
            logits.gather(1, cls[:, None]).sum().backward()
            acts = captured["activations"]
            assert acts.grad is not None  # the hook retained it for the backward pass
            weights = acts.grad.mean(dim=(2, 3), keepdim=True)
            cam = torch.relu((weights * acts).sum(dim=1)).sum(dim=1)  # [N, V]
            total = cam.sum(dim=1, keepdim=True)
            cams.append(torch.where(total > 0, cam / total.clamp_min(1e-12), cam).detach().cpu().numpy())
            preds.append(pred.cpu().numpy())
    finally:
        hook.remove()
        model.zero_grad(set_to_none=True)
    return np.concatenate(cams), np.concatenate(preds)


def ranking_of(importance: np.ndarray) -> list[dict]:
    """Joints by decreasing importance, scaled so the top joint is 1."""
    top = importance.max(initial=0.0)
    scaled = importance / top if top > 0 else importance
    order = np.argsort(-scaled, kind="stable")
    return [{"name": COCO17.joints[i], "importance": round(float(scaled[i]), 4)} for i in order]


def explain(
    checkpoint_path: str | Path,
    data: str | Path,
    out: str | Path,
    split: str = "train",
    target: str = "true",
    overwrite: bool = False,
    device: str = "auto",
    stride: int | None = None,
    layer: int | None = None,
) -> dict:
    """Rank the joints, print the table and write `joint_ranking.json` and `joint_importance.png` into `out`."""
    out, data = Path(out), Path(data)
    files = {"json": out / "joint_ranking.json", "png": out / "joint_importance.png"}
    for path in files.values():
        refuse_overwrite(path, overwrite)
    checkpoint = load_checkpoint(checkpoint_path)
    contract = checkpoint.contract
    if not checkpoint.config.uses_skeleton:
        raise CpgaitError(f"{checkpoint_path}: a {contract.streams} model has no ST-GCN stream to explain")
    stride = stride or int(checkpoint.training.get("settings", {}).get("stride", contract.default_stride))
    records = split_records(checkpoint, Dataset.from_path(data), split, data)
    windows, note = build_windows(records, contract, stride, where=f"{data} ({split})")
    if note:
        print(f"note: {note}")
    dev = pick_device(device)
    model = checkpoint.model(dev)
    layer = len(model.skeleton.blocks) if layer is None else layer
    cams, preds = gradcam(model, windows.inputs, windows.labels, target, device=dev, layer=layer)
    correct = preds == windows.labels
    if not correct.any():
        raise CpgaitError(
            f"{checkpoint_path}: no window of {data} ({split}) is classified correctly; nothing to explain"
        )
    per_class = {}
    for c, name in enumerate(contract.class_names):
        mask = correct & (windows.labels == c)
        per_class[name] = ranking_of(cams[mask].mean(axis=0)) if mask.any() else None
    result = {
        "format": RANKING_FORMAT,
        "joints": ranking_of(cams[correct].mean(axis=0)),
        "per_class": per_class,
        "model": str(checkpoint_path),
        "model_sha256": file_sha256(checkpoint_path),
        "layer": layer,
        "blocks": len(model.skeleton.blocks),
        "input_channels": checkpoint.config.skeleton_channels,
        "streams": contract.streams,
        "data": str(data),
        "split": split,
        "target": target,
        "windows": {"correct": int(correct.sum()), "total": len(correct)},
        "synthetic": contract.synthetic,
        "training_data": contract.training_data,
    }
    print(ranking_text(result))
    with atomic_output(files["json"], overwrite) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    mean_pose = windows.inputs["skeleton"][correct][:, :2].mean(axis=(0, 2))  # [2, V] normalised x, y
    with atomic_output(files["png"], overwrite) as tmp:
        plot_importance(result, mean_pose, tmp)
    print(f"wrote {files['json']} and {files['png']}")
    return result


def ranking_text(result: dict) -> str:
    """The overall ranking with the per-class importances beside it."""
    classes = [c for c, r in result["per_class"].items() if r is not None]
    per_class = {c: {j["name"]: j["importance"] for j in result["per_class"][c]} for c in classes}
    header = f"{'rank':>4}  {'joint':<16}{'overall':>9}" + "".join(f"{c:>11}" for c in classes)
    lines = [
        f"Grad-CAM joint importance (block {result['layer']} of {result['blocks']}), "
        f"{result['windows']['correct']} of {result['windows']['total']} windows "
        f"correct ({'SYNTHETIC data' if result['synthetic'] else 'real data'})",
        header,
    ]
    for rank, joint in enumerate(result["joints"], start=1):
        lines.append(
            f"{rank:>4}  {joint['name']:<16}{joint['importance']:>9.3f}"
            + "".join(f"{per_class[c][joint['name']]:>11.3f}" for c in classes)
        )
    return "\n".join(lines)


def plot_importance(result: dict, mean_pose: np.ndarray, path: Path) -> None:
    """The mean pose with joints coloured and sized by importance, and a bar chart of the ranking."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    value = {j["name"]: j["importance"] for j in result["joints"]}
    imp = np.array([value[name] for name in COCO17.joints])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    x, y = mean_pose
    for a, b in COCO17.edges:
        left.plot([x[a], x[b]], [y[a], y[b]], color="0.7", lw=2, zorder=1)
    dots = left.scatter(x, y, c=imp, s=60 + 400 * imp, cmap="inferno_r", vmin=0, vmax=1, edgecolors="k", zorder=2)
    left.set_aspect("equal")
    left.set_axis_off()
    left.set_title("mean pose, joints coloured by Grad-CAM importance")
    fig.colorbar(dots, ax=left, shrink=0.7)
    names = [j["name"] for j in result["joints"]][::-1]
    right.barh(names, [value[n] for n in names], color=plt.cm.inferno_r([value[n] for n in names]))
    right.set_xlabel("importance (top joint = 1)")
    right.set_title(f"{result['windows']['correct']} correctly classified windows")
    fig.suptitle(
        f"{Path(result['model']).name}: Grad-CAM on ST-GCN block {result['layer']} of {result['blocks']}"
        + (" (SYNTHETIC data)" if result["synthetic"] else "")
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
