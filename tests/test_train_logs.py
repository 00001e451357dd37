"""What a run records and draws: metrics.csv beside metrics.jsonl, TensorBoard events (when the package is there,
a one-line note when not), per-epoch throughput, the three-panel curves; and the learning-rate schedules, which
are the closed forms of torch.optim.lr_scheduler's.  CPU, a tiny network on synthetic data."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from netspec.train import loggers, loop, run
from netspec.train.plots import draw_curves
from netspec.train.recipe import Recipe, RunOptions

from stopping import StopAfter

TINY = ("netspec: 1\nname: tiny\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 4, kernel: 3}\n  - relu\n"
        "  - global_avgpool\n  - flatten\n  - linear: {out: 10}\n")
FLAGS = {"data": "synthetic", "epochs": 3, "batch_size": 32, "lr": 0.2, "optimizer": "momentum",
         "val_split": 0.2, "schedule": "cosine", "warmup_epochs": 1}
HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


pytestmark = pytest.mark.usefixtures("keep_thread_count")


def start(tmp: Path, ui=None, **flags) -> run.Result:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tiny.yaml").write_text(TINY)
    return run.start(str(tmp / "tiny.yaml"), {**FLAGS, **flags}, RunOptions(
        device="cpu", out=str(tmp / "runs"), subset=320, download=False, threads=1, log_every=2), ui)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> run.Result:
    return start(tmp_path_factory.mktemp("logs"))


def jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_metrics_csv_holds_the_same_records_as_metrics_jsonl(finished):
    with open(finished.run_dir / "metrics.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    records = jsonl(finished.run_dir)
    assert len(rows) == len(records) and tuple(rows[0]) == loggers.CSV_COLUMNS
    for row, record in zip(rows, records):
        for key in loggers.CSV_COLUMNS:
            value = record.get(key, "")
            assert row[key] == (str(value) if value != "" else ""), (key, row, record)
    kinds = [r["kind"] for r in rows]
    assert kinds.count("epoch") == 3 and kinds[-1] == "test" and kinds.count("step") == 3 * 8 // 2


def test_epoch_throughput_is_the_epochs_own_not_a_running_average(finished):
    epochs = [r for r in jsonl(finished.run_dir) if r["kind"] == "epoch"]
    spent = [b["train_time"] - a for a, b in zip([0.0] + [r["train_time"] for r in epochs], epochs)]
    for record, seconds in zip(epochs, spent):
        assert record["examples_per_s"] == pytest.approx(record["examples"] / seconds, rel=1e-6)


def test_step_lines_carry_the_mean_loss_of_their_interval(finished):
    records = jsonl(finished.run_dir)
    first_epoch = [r for r in records if r["kind"] == "step" and r["epoch"] == 1]
    # the running mean after k intervals is the mean of the k interval means (equal-sized batches)
    for k, record in enumerate(first_epoch, 1):
        assert record["loss"] == pytest.approx(sum(r["step_loss"] for r in first_epoch[:k]) / k, rel=1e-9)


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="the tensorboard package is not installed")
def test_tensorboard_events_hold_every_step_once_even_after_a_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with pytest.raises(loop.Stopped):
        start(tmp_path, StopAfter(13))
    (folder,) = (tmp_path / "runs").iterdir()
    result = run.resume(folder, RunOptions(device="cpu", download=False, threads=1), None)
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    steps = [e.step for e in events.Scalars("loss/train_step")]
    assert steps == list(range(2, 3 * 8 + 1, 2))                      # logged again after the resume, once each
    assert [e.value for e in events.Scalars("acc/val")] == pytest.approx([r["val_acc"] for r in result.history])
    assert [e.step for e in events.Scalars("final/test_acc")] == [24]


def test_without_tensorboard_a_run_says_so_in_one_line_and_writes_no_events(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # `import` now raises ImportError
    ui = StopAfter(10**9)
    result = start(tmp_path, ui, epochs=1)
    assert [m for m in ui.messages if "TensorBoard" in m] == [f"netspec: {loggers.TENSORBOARD_MISSING}"]
    assert not (result.run_dir / "tensorboard").exists() and (result.run_dir / "metrics.csv").is_file()


# ── curves.png ────────────────────────────────────────────────────────────────────────────────────────────────

def synthetic_records(epochs: int, steps_per_epoch: int = 10, log_every: int = 5) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        for s in range(log_every, steps_per_epoch + 1, log_every):
            step = (e - 1) * steps_per_epoch + s
            out.append({"kind": "step", "epoch": e, "step": step, "loss": 1 / e, "step_loss": 1 / e, "lr": 0.1 / e})
        out.append({"kind": "epoch", "epoch": e, "step": e * steps_per_epoch, "loss": 1 / e, "train_acc": 1 - 1 / e,
                    "val_loss": 1.1 / e, "val_acc": 0.9 - 0.5 / e, "lr": 0.1 / e, "examples_per_s": 1.0})
    out.append({"kind": "test", "epoch": epochs, "step": epochs * steps_per_epoch, "test_loss": 0.5, "test_acc": 0.8})
    return out


@pytest.mark.parametrize("epochs", [2, 200])
def test_curves_have_separate_loss_accuracy_and_learning_rate_panels(epochs):
    records = synthetic_records(epochs)
    figure = draw_curves(records, "t")
    loss, acc, lr = figure.axes
    assert [a.get_title() for a in figure.axes] == ["loss", "accuracy", "learning rate"]
    lines = {line.get_label(): line for line in loss.get_lines()}
    assert set(lines) == {"train (steps)", "train (epoch)", "val", "test (kept weights)"}
    assert len(lines["train (steps)"].get_xdata()) == 2 * epochs           # every logged step
    assert len(lines["train (epoch)"].get_xdata()) == epochs
    assert {line.get_label() for line in acc.get_lines()} == {"train", "val", "test (kept weights)"}
    assert len(lr.get_lines()[0].get_xdata()) == 3 * epochs
    # a few epochs are marked point by point; two hundred are drawn as plain lines
    assert (lines["train (epoch)"].get_marker() == "o") == (epochs == 2)
    assert loss.get_xlim()[1] >= epochs and max(lines["train (steps)"].get_xdata()) <= epochs


def test_a_runs_curves_png_is_drawn_at_the_end(finished):
    assert (finished.run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ── learning-rate schedules: the closed forms of torch's schedulers ──────────────────────────────────────────

def torch_lrs(make, steps: int, lr: float) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make(optimizer)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


S = torch.optim.lr_scheduler
SCHEDULES = {
    "cosine": (Recipe(lr=0.1, schedule="cosine"), lambda o: S.CosineAnnealingLR(o, T_max=400)),
    "cosine+warmup": (Recipe(lr=0.1, schedule="cosine", warmup_epochs=1),
                      lambda o: S.SequentialLR(o, [S.LinearLR(o, 1 / 100, 1.0, total_iters=99),
                                                   S.CosineAnnealingLR(o, T_max=300)], milestones=[100])),
    "onecycle": (Recipe(lr=0.4, schedule="onecycle"),
                 lambda o: S.SequentialLR(o, [S.LinearLR(o, 1 / 25, 1.0, total_iters=100),
                                              S.CosineAnnealingLR(o, T_max=300)], milestones=[100])),
    "constant": (Recipe(lr=0.9), lambda o: S.ConstantLR(o, factor=1.0)),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_each_schedule_is_the_one_torch_lr_scheduler_computes(name):
    recipe, make = SCHEDULES[name]
    ours = [loop.lr_at(recipe, step, 400, 100) for step in range(400)]
    assert ours == pytest.approx(torch_lrs(make, 400, recipe.lr), rel=1e-12, abs=1e-15)
