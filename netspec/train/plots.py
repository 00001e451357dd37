"""curves.png: train loss, train accuracy and test accuracy per epoch on one axis, as the course plots them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from netspec.train.files import write_file


def write_curves(path: Path, history: Sequence[dict], title: str) -> Path | None:
    """Draws the epoch records of `history`; returns None (and draws nothing) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)  # no display needed, and never a GUI window from a training run
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    epochs = [r["epoch"] for r in history]
    figure = Figure(figsize=(4.5, 3.2), dpi=120)
    axes = figure.add_subplot()
    for key, label, style in (("loss", "train loss", "-"), ("train_acc", "train acc", "--"),
                              ("test_acc", "test acc", "-.")):
        axes.plot(epochs, [r[key] for r in history], style, label=label, marker="o" if len(epochs) < 3 else None)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlim(min(epochs, default=1) - (0.5 if len(epochs) < 2 else 0), max(epochs, default=1) +
                  (0.5 if len(epochs) < 2 else 0))
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    return write_file(Path(path), image.getvalue())
