"""curves.png: three panels drawn from the run's metric records (netspec.train.loggers).

    loss            train loss step by step (the mean over each `--log-every` interval, faint) with its epoch
                    average, validation and test loss per epoch, the kept weights' test loss (a star)
    accuracy        train, validation and test accuracy per epoch, the kept weights' test accuracy (a star)
    learning rate   at every logged step (and each epoch's end)

The x axis is the epoch (steps are placed at fractions of their epoch), so the panels line up.  With few epochs
every point is marked; with many, the lines are drawn without markers and the step curve stays faint, so a
200-epoch run reads as well as a 2-epoch one.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from netspec.train.files import write_file

MARKERS_UP_TO = 12   # epochs; past this the epoch points are drawn as lines only


def write_curves(path: Path, records: Sequence[dict], title: str) -> Path | None:
    """Draws `records` (step, epoch and test records) into `path`; returns None (and writes nothing) when
    matplotlib is missing or there is no epoch yet."""
    figure = draw_curves(records, title)
    if figure is None:
        return None
    image = io.BytesIO()
    figure.savefig(image, format="png")
    return write_file(Path(path), image.getvalue())


def draw_curves(records: Sequence[dict], title: str):
    """The matplotlib Figure of the three panels, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)  # no display needed, and never a GUI window from a training run
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    epochs = [r for r in records if r.get("kind") == "epoch"]
    if not epochs:
        return None
    steps = [r for r in records if r.get("kind") == "step"]
    per_epoch = epoch_lengths(epochs)
    marker = "o" if len(epochs) <= MARKERS_UP_TO else None
    x = [r["epoch"] for r in epochs]

    figure = Figure(figsize=(10, 3.2), dpi=110)
    loss, acc, lr = figure.subplots(1, 3)
    if steps:
        loss.plot([step_x(r, per_epoch) for r in steps], [r.get("step_loss", r["loss"]) for r in steps], "-",
                  color="tab:blue", alpha=0.3, linewidth=0.8, label="train (steps)")
    for axes, keys in ((loss, (("loss", "train"), ("val_loss", "val"), ("test_loss", "test"))),
                       (acc, (("train_acc", "train"), ("val_acc", "val"), ("test_acc", "test")))):
        for (key, label), color in zip(keys, ("tab:blue", "tab:orange", "tab:green")):
            points = [(r["epoch"], r[key]) for r in epochs if key in r]
            if points:
                axes.plot(*zip(*points), "-", color=color, marker=marker if len(points) > 1 else "o",
                          label=label + (" (epoch)" if key == "loss" else ""))
    tests = [r for r in records if r.get("kind") == "test"]
    if tests:
        loss.plot([tests[-1]["epoch"]], [tests[-1]["test_loss"]], "*", color="tab:green", markersize=10,
                  label="test (kept weights)")
        acc.plot([tests[-1]["epoch"]], [tests[-1]["test_acc"]], "*", color="tab:green", markersize=10,
                 label="test (kept weights)")
    lr_points = [(step_x(r, per_epoch), r["lr"]) for r in steps if "lr" in r] + \
                [(r["epoch"], r["lr"]) for r in epochs if "lr" in r]
    lr_points.sort()
    lr.plot(*zip(*lr_points), "-", color="tab:purple", marker=marker if len(lr_points) <= 2 * MARKERS_UP_TO else None,
            markersize=3)
    for axes, name in ((loss, "loss"), (acc, "accuracy"), (lr, "learning rate")):
        axes.set_title(name, fontsize=9)
        axes.set_xlabel("epoch", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlim(0, max(x) * 1.03 + 0.1)
        axes.grid(True, alpha=0.3)
    loss.legend(loc="best", fontsize=7)
    acc.legend(loc="best", fontsize=7)
    lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def epoch_lengths(epochs: Sequence[dict]) -> dict[int, tuple[int, int]]:
    """epoch → (its first step, its number of steps), from the epoch records' cumulative step counts."""
    out, previous = {}, 0
    for r in epochs:
        out[r["epoch"]] = (previous, max(r["step"] - previous, 1))
        previous = r["step"]
    return out


def step_x(record: dict, per_epoch: dict[int, tuple[int, int]]) -> float:
    """A step record's place on the epoch axis: epoch e's steps run from e-1 to e."""
    epoch = record["epoch"]
    if epoch in per_epoch:
        first, length = per_epoch[epoch]
        return epoch - 1 + (record["step"] - first) / length
    first, length = per_epoch[max(per_epoch)] if per_epoch else (0, 1)   # the epoch being trained
    return epoch - 1 + min((record["step"] - first - length) / length, 1.0)
