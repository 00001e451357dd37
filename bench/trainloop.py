"""Item 4 — training loop: netspec's loop (A) against a course-style loop (B) on the same model and data.

B is what the course (d2l's `train_ch6`) runs: a `torch.utils.data.DataLoader` with 4 workers over a data set
that turns each example into a PIL image and then a float tensor in Python (torchvision's FashionMNIST +
ToTensor, written out here so that torchvision is not needed), then forward, loss, backward and SGD step per
batch.  A is `netspec.train.run.start` (whole uint8 tensors, batches gathered and converted on the device).
Same network (the spec compiled by netspec, the course's xavier init from the same seed), same recipe (the
spec's `train:` section), same Fashion-MNIST examples.

- throughput: one epoch of A, one of B, alternating; examples/s counts training steps only (evaluation
  excluded, as the course counts), and B's includes waiting for its DataLoader — that is its real cost.
- time to accuracy: both train up to `epochs` full epochs, evaluating after each; the training seconds (no
  evaluation) until the test accuracy first reaches the target.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4                    # the course's `get_dataloader_workers()`


def available() -> str | None:
    """None when netspec's training API and the data are here; otherwise why item 4 is skipped."""
    try:
        from netspec.train import run  # noqa: F401
        from netspec.train.data import load_dataset

        load_dataset("fashion-mnist", (1, 28, 28), download=False)
    except Exception as err:  # any failure here means "cannot run", reported in the results, never a crash
        return f"{type(err).__name__}: {err}"
    return None


# ── B: the course-style loop ──────────────────────────────────────────────────────────────────────────────────

class PerItemDataset(torch.utils.data.Dataset):
    """torchvision.datasets.FashionMNIST + transforms.ToTensor, as the course uses them: per item, a PIL image
    from the uint8 array, then a (1, H, W) float tensor in [0, 1]; the label as a Python int."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images = images[:, 0].numpy()   # (N, H, W) uint8
        self.labels = labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        picture = Image.fromarray(self.images[index], mode="L")
        array = np.array(picture, dtype=np.uint8, copy=True)
        return torch.from_numpy(array).unsqueeze(0).float().div(255), self.labels[index]


def course_loader(images, labels, batch_size: int, train: bool) -> torch.utils.data.DataLoader:
    # 4 workers on 2 cores is what the course does here; PyTorch's warning about it is expected, not news.
    warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)
    return torch.utils.data.DataLoader(PerItemDataset(images, labels), batch_size, shuffle=train,
                                       num_workers=WORKERS)


def course_epoch(net: nn.Module, loader, optimizer) -> tuple[float, int]:
    """One epoch as d2l's train_ch6 runs it; (seconds, examples).  The clock runs over the whole epoch,
    DataLoader waits included (d2l's own timer skips them, which hides the per-item conversion)."""
    net.train()
    seen = 0
    start = time.perf_counter()
    for x, y in loader:
        optimizer.zero_grad()
        y_hat = net(x)
        loss = F.cross_entropy(y_hat, y)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # d2l's Accumulator: a Python float per batch
            float(loss) * x.shape[0], float((y_hat.argmax(1) == y).sum())
        seen += x.shape[0]
    return time.perf_counter() - start, seen


@torch.no_grad()
def course_accuracy(net: nn.Module, loader) -> float:
    net.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((net(x).argmax(1) == y).sum())
        total += len(y)
    return correct / total


def course_model(spec: str, seed: int) -> nn.Module:
    """The spec compiled by netspec, initialised as the course (and netspec's `init: xavier`) does."""
    import netspec

    torch.manual_seed(seed)
    net = netspec.load(spec)
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
    return net


def course_run(spec: str, data, epochs: int, subset: int | None, seed: int = 0,
               target: float | None = None) -> list[dict]:
    """B for up to `epochs` epochs (stopping at `target` test accuracy): per epoch, training seconds,
    examples/s and test accuracy."""
    from netspec.pipeline import load_spec

    recipe = load_spec(spec).train
    n = subset or len(data.train_y)
    net = course_model(spec, seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe["lr"])
    train = course_loader(data.train_x[:n], data.train_y[:n], recipe["batch_size"], True)
    test = course_loader(data.test_x[:n], data.test_y[:n], recipe["batch_size"], False)
    history, total = [], 0.0
    for epoch in range(epochs):
        seconds, seen = course_epoch(net, train, optimizer)
        total += seconds
        history.append({"epoch": epoch + 1, "examples_per_s": seen / seconds, "train_time": total,
                        "test_acc": course_accuracy(net, test)})
        if target is not None and history[-1]["test_acc"] >= target:
            break
    return history


# ── A: netspec's loop ─────────────────────────────────────────────────────────────────────────────────────────

def netspec_run(spec: str, epochs: int, subset: int | None, out: Path, seed: int = 0,
                target: float | None = None) -> list[dict]:
    """A through the public training entry points, one epoch at a time (`start`, then `resume`, which continues
    exactly) so that it can stop at `target`; the history's train_time excludes evaluation."""
    from netspec.train import run
    from netspec.train.recipe import RunOptions

    # test_every_epoch: time-to-accuracy reads each epoch's test accuracy (evaluation stays out of train_time)
    options = RunOptions(device="cpu", subset=subset, out=str(out), download=False, progress=False,
                         test_every_epoch=True)
    result = run.start(spec, {"epochs": 1, "seed": seed}, options)
    while len(result.history) < epochs and (target is None or result.history[-1]["test_acc"] < target):
        result = run.resume(result.run_dir, options, len(result.history) + 1)
    return [{"epoch": r["epoch"], "examples_per_s": r["examples"] / _epoch_time(result.history, i),
             "train_time": r["train_time"], "test_acc": r["test_acc"]} for i, r in enumerate(result.history)]


def _epoch_time(history, index: int) -> float:
    return history[index]["train_time"] - (history[index - 1]["train_time"] if index else 0.0)


# ── the measurements ──────────────────────────────────────────────────────────────────────────────────────────

def throughput(spec: str, data, rounds: int, subset: int, out: Path) -> dict:
    """One epoch of A then one of B (alternating which goes first), `rounds` times; ratio A/B of examples/s.
    A short untimed round first, so neither side pays the process's one-time costs (imports, kernel setup)."""
    netspec_run(spec, 1, 1024, out)
    course_run(spec, data, 1, 1024)
    a_rates, b_rates = [], []
    for index in range(rounds):
        steps = [("a", lambda: netspec_run(spec, 1, subset, out)), ("b", lambda: course_run(spec, data, 1, subset))]
        for label, fn in steps if index % 2 == 0 else reversed(steps):
            (a_rates if label == "a" else b_rates).append(fn()[0]["examples_per_s"])
    ratios = [a / b for a, b in zip(a_rates, b_rates)]
    return {"subset": subset, "netspec_examples_per_s": _spread(a_rates), "course_examples_per_s": _spread(b_rates),
            "ratio": _spread(ratios, 3)}


def time_to_accuracy(spec: str, data, target: float, epochs: int, out: Path) -> dict:
    """Both loops on the full data for up to `epochs` epochs; training seconds until test acc ≥ target."""
    result = {"target": target, "epochs": epochs}
    for label, history in (("netspec", netspec_run(spec, epochs, None, out, target=target)),
                           ("course", course_run(spec, data, epochs, None, target=target))):
        hit = next((r for r in history if r["test_acc"] >= target), None)
        result[label] = {"test_acc": [round(r["test_acc"], 4) for r in history],
                         "train_time": [round(r["train_time"], 2) for r in history],
                         "epochs_to_target": hit["epoch"] if hit else None,
                         "seconds_to_target": round(hit["train_time"], 2) if hit else None}
    a, b = result["netspec"]["seconds_to_target"], result["course"]["seconds_to_target"]
    result["speedup"] = round(b / a, 2) if a and b else None
    return result


def pipelines(data, batch_size: int, subset: int, rounds: int) -> dict:
    """The data side alone, no model: B's DataLoader (workers started, every item converted, batches collated)
    against A's batch path (gather by index, uint8 → float in [0, 1]: `netspec.train.data.to_input`).  When the
    model's step costs next to nothing — a GPU — these ceilings are what each loop can reach."""
    from netspec.train.data import to_input

    images, labels = data.train_x[:subset], data.train_y[:subset]
    a_rates, b_rates = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for idx in torch.randperm(subset).split(batch_size):
            to_input(images[idx], None), labels[idx]
        a_rates.append(subset / (time.perf_counter() - start))
        start = time.perf_counter()
        for _ in course_loader(images, labels, batch_size, True):
            pass
        b_rates.append(subset / (time.perf_counter() - start))
    return {"subset": subset, "batch_size": batch_size, "netspec_examples_per_s": _spread(a_rates, 0),
            "course_examples_per_s": _spread(b_rates, 0),
            "ratio": _spread([a / b for a, b in zip(a_rates, b_rates)], 1)}


def _spread(values: list[float], digits: int = 1) -> dict:
    ordered = sorted(values)
    return {"min": round(ordered[0], digits), "median": round(float(np.median(ordered)), digits),
            "max": round(ordered[-1], digits), "n": len(values)}


def run(quick: bool) -> dict:
    reason = available()
    if reason is not None:
        return {"status": f"skipped: {reason}"}
    from netspec.train.data import load_dataset

    data = load_dataset("fashion-mnist", (1, 28, 28), download=False)
    result = {"status": "ok", "threads": torch.get_num_threads(), "workers": WORKERS, "throughput": {}}
    with tempfile.TemporaryDirectory(prefix="netspec-bench-runs-") as tmp:
        for spec in (["lenet"] if quick else ["lenet", "bn_lenet"]):
            result["throughput"][spec] = throughput(spec, data, 1 if quick else 3, 2000 if quick else 12000,
                                                    Path(tmp))
        result["data_pipeline"] = pipelines(data, 256, 2000 if quick else 12000, 1 if quick else 3)
        if not quick:
            result["time_to_accuracy"] = {"bn_lenet": time_to_accuracy("bn_lenet", data, 0.75, 3, Path(tmp))}
    return result
