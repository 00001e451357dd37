"""Choosing what a run keeps: a validation split (--val-split, a folder's val/, given from Python), the best epoch
on it, early stopping, the test set once at the end; and the run-level fixes that go with them (--epochs 0, a
class-count mismatch, --name).  CPU, one thread, a tiny network on synthetic data; one real Fashion-MNIST subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.train import checkpoint, data, loop, run
from netspec.train.datasets import DataError
from netspec.train.recipe import RunOptions

from stopping import StopAfter

TINY = ("netspec: 1\nname: tiny\nparams: {classes: 10}\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 4, kernel: 3}\n"
        "  - batchnorm\n  - relu\n  - global_avgpool\n  - flatten\n  - linear: {out: $classes}\n")
FLAGS = {"data": "synthetic", "epochs": 3, "batch_size": 32, "lr": 0.2, "optimizer": "momentum", "seed": 5,
         "augment": "flip,crop"}


pytestmark = pytest.mark.usefixtures("keep_thread_count")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


def options(out: Path, **kw) -> RunOptions:
    return RunOptions(device="cpu", out=str(out), subset=kw.pop("subset", 320), download=False, threads=1,
                      log_every=kw.pop("log_every", 2), **kw)


def records(folder: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def cli(*args: str) -> int:
    return main(["train", *args, "--device", "cpu", "--threads", "1", "--no-progress"])


# ── the split ─────────────────────────────────────────────────────────────────────────────────────────────────

def test_the_validation_split_is_fixed_seeded_disjoint_and_the_size_asked_for():
    whole = data.synthetic((1, 8, 8), train=200, test=20)
    split = whole.split_val(0.25)
    assert (len(split.val_y), len(split.train_y)) == (50, 150)
    # every training example is in exactly one part (the images are distinct noise: rows identify them)
    rows = lambda x: {bytes(r.flatten().tolist()) for r in x}
    assert rows(split.val_x) | rows(split.train_x) == rows(whole.train_x)
    assert not rows(split.val_x) & rows(split.train_x)
    again = data.synthetic((1, 8, 8), train=200, test=20).split_val(0.25)
    assert torch.equal(again.val_x, split.val_x) and torch.equal(again.train_y, split.train_y)
    assert torch.equal(split.test_x, whole.test_x)
    with pytest.raises(DataError, match="holds out 0"):
        whole.split_val(0.001)


# ── what is kept ──────────────────────────────────────────────────────────────────────────────────────────────

def scripted_validation(monkeypatch, accuracies: list[float]) -> None:
    """The validation accuracy of epoch k is accuracies[k-1] (the loss is real): to make a chosen epoch best."""
    real, seen = loop.evaluate, []

    def evaluate(setup, split="test"):
        loss, acc, count = real(setup, split)
        if split == "val":
            seen.append(1)
            return loss, accuracies[len(seen) - 1], count
        return loss, acc, count

    monkeypatch.setattr(loop, "evaluate", evaluate)


def test_best_is_chosen_on_validation_patience_stops_and_the_test_runs_once_on_the_kept_weights(tiny, tmp_path,
                                                                                                monkeypatch):
    scripted_validation(monkeypatch, [0.5, 0.7, 0.6, 0.65, 0.9])
    result = run.start(tiny, {**FLAGS, "epochs": 5, "val_split": 0.2, "patience": 2}, options(tmp_path))
    folder = result.run_dir
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4] and result.stopped_early   # 2 epochs after the best
    assert (result.best_epoch, result.best_acc) == (2, 0.7)
    assert all("test_acc" not in r for r in result.history)                # never tested while training
    (test,) = records(folder, "test")
    assert test["epoch"] == 2 and test == {**result.test, "kind": "test"}
    # the test ran on epoch 2's weights, which best.pt and model.safetensors hold and the returned model too
    best = checkpoint.load(folder / "best.pt")
    assert best["state"]["epoch"] == 2
    assert all(torch.equal(v, best["model"][k]) for k, v in result.model.state_dict().items())
    test_set = data.synthetic((1, 8, 8)).subset(320)
    assert loop.evaluate_on(result.model, test_set.test_x, test_set.test_y, (8, 8), 1024)[1] == test["test_acc"]
    summary = (folder / "summary.txt").read_text()
    assert "kept weights: the epoch with the best validation accuracy" in summary
    assert "stopped early" in summary and "kept epoch 2 (val acc 0.7000)" in summary


def test_without_validation_the_last_epoch_is_kept_and_the_folder_says_so(tiny, tmp_path):
    result = run.start(tiny, {**FLAGS, "epochs": 2}, options(tmp_path))
    assert result.best_epoch == 2 and result.best_acc == -1
    assert ["test_acc" in r for r in result.history] == [False, True]      # once, after the last epoch
    assert json.loads((result.run_dir / "run.json").read_text())["selection"] == \
        "the last epoch (no validation set to choose on)"
    assert checkpoint.load(result.run_dir / "best.pt")["state"]["epoch"] == 2


def test_the_test_set_after_every_epoch_only_when_asked(tiny, tmp_path, capsys):
    assert cli(tiny, *flags({**FLAGS, "epochs": 2, "val_split": 0.2}), "--subset", "96", "--out", str(tmp_path),
               "--test-every-epoch") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["epoch 1/2", "epoch 2/2"]
    assert all(", val acc " in line and ", test acc " in line for line in out)


def test_patience_without_validation_is_a_usage_error(tiny, tmp_path, capsys):
    assert cli(tiny, *flags(FLAGS), "--patience", "2", "--out", str(tmp_path)) == 2
    assert "no validation split (add --val-split FRACTION)" in capsys.readouterr().err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def flags(values: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in values.items()]


# ── resume stays exact with a validation split, early stopping and the loggers ───────────────────────────────

def test_an_interrupted_run_with_validation_resumes_to_the_same_metrics_and_logs(tiny, tmp_path):
    recipe = {**FLAGS, "epochs": 3, "val_split": 0.2, "patience": 5, "schedule": "onecycle"}
    whole = run.start(tiny, recipe, options(tmp_path / "a"))
    with pytest.raises(loop.Stopped):
        run.start(tiny, recipe, options(tmp_path / "b"), StopAfter(13))       # 8 steps an epoch: mid-epoch 2
    (folder,) = (tmp_path / "b").iterdir()
    resumed = run.resume(folder, options(tmp_path / "b", log_every=None), None)
    timeless = lambda r: {k: v for k, v in r.items() if k not in ("examples_per_s", "train_time")}
    assert [timeless(r) for r in resumed.history] == [timeless(r) for r in whole.history]
    assert resumed.test == whole.test and resumed.best_epoch == whole.best_epoch
    assert all(torch.equal(v, whole.model.state_dict()[k]) for k, v in resumed.model.state_dict().items())
    for name in ("metrics.jsonl", "metrics.csv"):
        lines = lambda f: [l for l in (f / name).read_text().splitlines()]
        a, b = lines(whole.run_dir), lines(folder)
        assert len(a) == len(b) and [strip_times(x) for x in a] == [strip_times(x) for x in b], name


def strip_times(line: str) -> str:
    if line.startswith("{"):
        return json.dumps({k: v for k, v in json.loads(line).items() if k not in ("examples_per_s", "train_time")})
    cells = line.split(",")
    return ",".join(cells[:12])                 # metrics.csv: the time columns are the last two


# ── a folder's val/, and the class count ──────────────────────────────────────────────────────────────────────

def image_folder(root: Path, splits: dict[str, int]) -> Path:
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for split, per_class in splits.items():
        for label, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                base = 40 + 160 * label
                pixels = (base + torch.randint(-30, 30, (8, 8), generator=gen)).clamp(0, 255).to(torch.uint8)
                Image.fromarray(pixels.numpy(), "L").save(root / split / name / f"{i}.png")
    return root


def test_a_folders_val_is_its_validation_set(tiny, tmp_path):
    root = image_folder(tmp_path / "pets", {"train": 12, "val": 4, "test": 5})
    loaded = data.read_folder(root, (1, 8, 8))
    assert (len(loaded.train_y), len(loaded.val_y), len(loaded.test_y)) == (24, 8, 10)
    result = run.start(tiny, {**FLAGS, "data": f"folder:{root}", "epochs": 2, "batch_size": 8},
                       options(tmp_path / "runs", params={"classes": 2}))
    assert all("val_acc" in r for r in result.history) and result.test["examples"] == 10
    with pytest.raises(DataError, match="own validation set"):
        loaded.split_val(0.2)
    # train/ and val/ alone: val/ is the test set, as before
    two = image_folder(tmp_path / "two", {"train": 3, "val": 2})
    assert not data.read_folder(two, (1, 8, 8)).has_val


def test_a_network_with_more_outputs_than_the_data_has_classes_is_a_usage_error(tiny, tmp_path, capsys):
    root = image_folder(tmp_path / "pets", {"train": 2, "test": 1})
    assert cli(tiny, "--data", f"folder:{root}", "--epochs", "1", "--out", str(tmp_path / "runs")) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("netspec: error: folder:" + str(root) + " has 2 classes but the network outputs [10]; they "
                   "must be equal, e.g. `--set num_classes=2`") and not (tmp_path / "runs").exists()


# ── --epochs 0, --name ────────────────────────────────────────────────────────────────────────────────────────

def test_zero_epochs_is_a_usage_error_that_makes_no_run_folder(tiny, tmp_path, capsys):
    assert cli(tiny, "--data", "synthetic", "--epochs", "0", "--out", str(tmp_path / "runs")) == 2
    assert capsys.readouterr().err.strip() == "netspec: error: epochs must be ≥ 1, got 0"
    assert not (tmp_path / "runs").exists()


def test_name_picks_the_run_folder_and_never_reuses_one(tiny, tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli(tiny, "--data", "synthetic", "--subset", "64", "--epochs", "1", "--out", str(out), "--name",
               "baseline") == 0
    assert (out / "baseline" / "last.pt").is_file()
    capsys.readouterr()
    before = sorted(p.name for p in (out / "baseline").iterdir())
    assert cli(tiny, "--data", "synthetic", "--subset", "64", "--epochs", "1", "--out", str(out), "--name",
               "baseline") == 2
    assert "run folder " + str(out / "baseline") + " exists" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "baseline").iterdir()) == before
    for bad in ("../escape", ".", "a/b"):
        assert cli(tiny, "--data", "synthetic", "--epochs", "1", "--out", str(out), "--name", bad) == 2
        assert "a run name is one folder name" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["baseline"] and not (tmp_path / "escape").exists()


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_an_absent_device_is_one_line_exit_2(tiny, tmp_path, capsys, monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["train", tiny, "--data", "synthetic", "--epochs", "1", "--out", str(tmp_path), "--device", device,
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is not available here" in err, err


# ── real data ─────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Fashion-MNIST not installed")
def test_a_fashion_mnist_subset_trains_with_a_validation_split(tmp_path):
    result = run.start("bn_lenet", {"epochs": 2, "batch_size": 64, "val_split": 0.2, "schedule": "constant",
                                    "lr": 0.5}, options(tmp_path, subset=640, log_every=5))
    assert len(result.history) == 2 and all("val_acc" in r for r in result.history)
    assert json.loads((result.run_dir / "run.json").read_text())["data"] == {
        "name": "fashion-mnist", "train": 512, "test": 640, "val": 128, "classes": list(data.FASHION_CLASSES)}
    assert result.best_acc > 0.2 and result.test["test_acc"] > 0.2       # chance is 0.1


def test_mps_is_taken_where_torch_has_it(monkeypatch):
    from netspec.train import devices
    from netspec.train.distributed import Dist

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.pick("mps", Dist()) == torch.device("mps")


def test_the_specs_recipe_can_hold_out_the_validation_split(tmp_path):
    spec = tmp_path / "tiny_val.yaml"
    spec.write_text(TINY.replace("name: tiny\n", "name: tiny_val\ntrain: {data: synthetic, epochs: 1, batch_size: 32, "
                                                  "val_split: 0.25, patience: 3}\n"))
    result = run.start(str(spec), {}, options(tmp_path))
    info = json.loads((result.run_dir / "run.json").read_text())
    assert (info["recipe"]["val_split"], info["recipe"]["patience"]) == (0.25, 3)
    assert (info["data"]["train"], info["data"]["val"]) == (240, 80) and "val_acc" in result.history[0]


@pytest.mark.parametrize("flag, says", [
    (["--val-split", "1"], "val_split must be a fraction in [0, 1), got 1.0"),
    (["--val-split", "-0.1"], "val_split must be a fraction in [0, 1), got -0.1"),
    (["--val-split", "0.2", "--patience", "-1"], "patience must be ≥ 0 (0: no early stopping), got -1"),
    (["--val-split", "0.1", "--subset", "3"], "val_split 0.1 of 3 training examples holds out 0; it must leave at "
                                              "least one for validation and one for training"),
])
def test_a_bad_split_or_patience_is_one_usage_line(tiny, tmp_path, capsys, flag, says):
    assert cli(tiny, "--data", "synthetic", "--epochs", "1", "--out", str(tmp_path / "runs"), *flag) == 2
    assert capsys.readouterr().err.strip() == f"netspec: error: {says}" and not (tmp_path / "runs").exists()
