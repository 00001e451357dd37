"""`netspec eval`'s measurements of a trained network on a data set: loss, top-1, top-5 (more than five classes),
per-class accuracy and the confusion matrix, all summed on the device in one pass; confusion.png draws the matrix.
"""

from __future__ import annotations

import io
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from netspec.train.data import to_input
from netspec.train.files import write_file
from netspec.train.losses import main_output

TOP_K = 5


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str],
            size: tuple[int, int], batch: int, channels_last: bool = False, amp: bool = False) -> dict:
    """{"loss", "top1", "top5" (None for five classes or fewer), "per_class" {name: acc or None when the class has
    no example}, "confusion" (rows: true class, columns: predicted), "examples"}."""
    was_training = model.training
    model.eval()
    device, k = images.device, len(classes)
    confusion = torch.zeros(k * k, dtype=torch.int64, device=device)
    sums = torch.zeros(2, dtype=torch.float64, device=device)                   # loss, top-5 hits
    for idx in torch.arange(len(labels), device=device).split(batch):
        x, y = to_input(images[idx], size, channels_last), labels[idx]
        with torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext():
            logits = main_output(model(x)).float()
        confusion += torch.bincount(y * k + logits.argmax(1), minlength=k * k)
        top5 = (logits.topk(min(TOP_K, k), 1).indices == y[:, None]).any(1).sum() if k > TOP_K else 0
        sums += torch.stack([F.cross_entropy(logits, y, reduction="sum"), torch.as_tensor(top5, device=device)
                             .double()])
    model.train(was_training)
    matrix = confusion.view(k, k).cpu()
    count = int(matrix.sum())
    per_row = matrix.sum(1)
    loss, top5 = sums.tolist()
    return {"examples": count, "loss": loss / max(count, 1), "top1": int(matrix.diag().sum()) / max(count, 1),
            "top5": top5 / max(count, 1) if k > TOP_K else None,
            "per_class": {name: (int(matrix[i, i]) / int(per_row[i]) if per_row[i] else None)
                          for i, name in enumerate(classes)},
            "confusion": matrix.tolist(), "classes": list(classes)}


def write_confusion(path: Path, confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> Path | None:
    """confusion.png: the matrix as an image, each row normalized to the true class's count, the counts written
    in the cells when there are at most 20 classes.  None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        return None
    k = len(classes)
    matrix = torch.tensor(confusion, dtype=torch.float64)
    rates = matrix / matrix.sum(1, keepdim=True).clamp(min=1)
    side = min(3 + 0.45 * k, 16)
    figure = Figure(figsize=(side + 1, side), dpi=100)
    axes = figure.add_subplot()
    shown = axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 40:
        axes.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=8)
        axes.set_yticks(range(k), classes, fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    axes.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                              color="white" if rates[i, j] > 0.5 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    return write_file(Path(path), image.getvalue())
