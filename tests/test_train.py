"""netspec train / eval / export on CPU, on synthetic data and small subsets (the real-data runs are in
docs/benchmarks.md; `-m slow` runs the ones kept here)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import netspec
from netspec.cli import main
from netspec.cli import train as train_cli
from netspec.train import checkpoint, data, datasets as sources, loop, recipe, run
from netspec.train.recipe import Recipe, RecipeError, RunOptions

from stopping import StopAfter

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"data": "synthetic", "epochs": 2, "batch_size": 64}


pytestmark = pytest.mark.usefixtures("keep_thread_count")


def options(tmp_path: Path, **kw) -> RunOptions:
    return RunOptions(device="cpu", subset=kw.pop("subset", 512), out=str(tmp_path / "runs"), download=False,
                      log_every=kw.pop("log_every", 4), threads=1, **kw)


def state_of(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:5]}"


# ── recipe ────────────────────────────────────────────────────────────────────────────────────────────────────

def test_the_recipe_takes_the_specs_train_section_then_the_flags():
    spec_train = {"lr": 1.0, "epochs": 10, "batch_size": 256, "resize": None, "optimizer": "sgd"}
    r = recipe.resolve(spec_train, {"epochs": 2, "lr": None, "augment": "flip,crop", "seed": 7})
    assert (r.lr, r.epochs, r.batch_size, r.resize, r.augment, r.seed) == (1.0, 2, 256, None, ("flip", "crop"), 7)
    assert recipe.resolve({}, {}) == Recipe()


def test_an_unusable_recipe_value_is_a_recipe_error_naming_the_choices():
    with pytest.raises(RecipeError, match="unknown augmentation `rotate`.*flip, crop"):
        recipe.resolve({}, {"augment": "rotate"})
    with pytest.raises(RecipeError, match="label_smoothing"):
        recipe.resolve({}, {"label_smoothing": 1.5})
    with pytest.raises(RecipeError, match="folder:PATH"):
        recipe.resolve({}, {"data": "imagenet"})


def test_the_cli_choices_are_the_recipes_own():
    assert train_cli.OPTIMIZERS == recipe.OPTIMIZERS and train_cli.SCHEDULES == recipe.SCHEDULES
    assert train_cli.MAX_COUNT == recipe.MAX_COUNT
    from netspec.frontend.grammar import TRAIN_KEYS

    assert set(TRAIN_KEYS) <= {f for f in Recipe.__dataclass_fields__}


def test_the_schedules_start_peak_and_end_where_they_should():
    onecycle = Recipe(lr=0.4, schedule="onecycle", epochs=4)
    lrs = [loop.lr_at(onecycle, s, 400, 100) for s in range(400)]
    assert lrs[0] == pytest.approx(0.4 / 25) and max(lrs) == pytest.approx(0.4, rel=1e-3)
    assert lrs.index(max(lrs)) == 100 and lrs[-1] < 1e-4
    cosine = Recipe(lr=0.1, schedule="cosine", warmup_epochs=1)
    assert loop.lr_at(cosine, 0, 300, 100) == pytest.approx(0.001) and loop.lr_at(cosine, 99, 300, 100) == 0.1
    assert loop.lr_at(Recipe(lr=0.9), 123, 300, 100) == 0.9


# ── a run and its folder ──────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One short BN-LeNet run on synthetic data, shared by the tests that only read its folder."""
    tmp = tmp_path_factory.mktemp("finished")
    recipe = {**SMALL, "epochs": 3, "optimizer": "momentum", "lr": 0.05, "schedule": "constant"}
    result = run.start("bn_lenet", recipe, options(tmp))
    return result


def test_a_run_learns_and_fills_its_folder(finished):
    folder = finished.run_dir
    names = {p.name for p in folder.iterdir()}
    assert {"run.json", "metrics.jsonl", "curves.png", "summary.txt", "last.pt", "best.pt", "model.safetensors",
            "spec"} <= names
    assert folder.name.startswith("bn_lenet-") and folder.parent.name == "runs"
    assert finished.history[-1]["train_acc"] > 0.5 and finished.test["test_acc"] > 0.5   # chance is 0.1
    assert finished.best_epoch == 3 and finished.best_acc == -1      # no validation set: the last epoch is kept
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((folder / "run.json").read_text())
    assert info["recipe"]["optimizer"] == "momentum" and info["spec_file"] == "spec/bn_lenet.yaml"
    assert (folder / info["spec_file"]).read_text() == (ROOT / "specs" / "bn_lenet.yaml").read_text()
    summary = (folder / "summary.txt").read_text()
    assert "kept weights: the last epoch (no validation set to choose on)" in summary
    assert f"test (kept weights, epoch 3): loss {finished.test['test_loss']:.4f}" in summary
    assert info["selection"] == "the last epoch (no validation set to choose on)"
    if shutil.which("dot"):
        assert (folder / "diagram.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_metrics_have_one_line_per_epoch_and_step_lines_every_n_steps(finished):
    records = [json.loads(line) for line in (finished.run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert steps and all(r["step"] % 4 == 0 for r in steps)
    assert epochs[-1]["step"] == 3 * math.ceil(512 / 64)
    assert {"loss", "train_acc", "examples_per_s"} <= set(epochs[0])
    # without a validation set the test set is evaluated once, after the last epoch
    assert ["test_acc" in r for r in epochs] == [False, False, True]
    assert records[-1]["kind"] == "test" and records[-1]["test_acc"] == epochs[-1]["test_acc"]


def test_checkpoints_load_with_weights_only_and_hold_what_resume_needs(finished):
    saved = torch.load(finished.run_dir / "last.pt", weights_only=True)
    assert {"model", "optimizer", "state", "rng", "recipe", "spec"} <= set(saved)
    assert saved["state"]["epoch"] == 3 and saved["state"]["step_in_epoch"] == 0
    best = checkpoint.load(finished.run_dir / "best.pt")
    assert best["state"]["epoch"] == finished.best_epoch and "optimizer" not in best


def test_two_runs_started_in_the_same_second_get_different_folders(tmp_path):
    from netspec.train.rundir import create

    folders = {create(tmp_path, "net") for _ in range(3)}
    assert len(folders) == 3 and all(f.is_dir() for f in folders)


# ── resume ────────────────────────────────────────────────────────────────────────────────────────────────────

RESUMABLE = {**SMALL, "epochs": 3, "optimizer": "momentum", "lr": 0.05, "schedule": "onecycle",
             "augment": "flip,crop", "seed": 3}


@pytest.mark.parametrize("stop_at", [5, 8], ids=["mid-epoch", "epoch-end"])
def test_an_interrupted_and_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path, stop_at):
    whole = run.start("bn_lenet", RESUMABLE, options(tmp_path / "a", subset=512))
    with pytest.raises(loop.Stopped):
        run.start("bn_lenet", RESUMABLE, options(tmp_path / "b", subset=512), StopAfter(stop_at))
    (folder,) = (tmp_path / "b" / "runs").iterdir()
    assert checkpoint.load(folder / "last.pt")["state"]["global_step"] == stop_at
    resumed = run.resume(folder, options(tmp_path / "b"), None)
    assert_same_weights(state_of(whole.model), state_of(resumed.model))
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    epochs = [json.loads(l)["epoch"] for l in (folder / "metrics.jsonl").read_text().splitlines()
              if json.loads(l)["kind"] == "epoch"]
    assert epochs == [1, 2, 3]


def test_a_resumed_run_keeps_logging_steps_at_its_own_interval(tmp_path):
    with pytest.raises(loop.Stopped):
        run.start("bn_lenet", RESUMABLE, options(tmp_path, log_every=3), StopAfter(5))
    (folder,) = (tmp_path / "runs").iterdir()
    run.resume(folder, options(tmp_path, log_every=None), None)        # as `--resume` without --log-every
    steps = [r["step"] for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
             if r["kind"] == "step"]
    assert steps == list(range(3, 3 * 8 + 1, 3))                        # 8 steps an epoch, 3 epochs


def test_resume_through_the_cli_refuses_to_change_the_recipe(tmp_path, finished, capsys):
    assert main(["train", "--resume", str(finished.run_dir), "--lr", "0.5"]) == 2
    assert "only --epochs may change" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2


# ── failures ──────────────────────────────────────────────────────────────────────────────────────────────────

def poison_step(monkeypatch, bad_step: int):
    real = loop.train_step
    count = {"n": 0}

    def step(setup, idx, gen, lr):
        loss, *rest = real(setup, idx, gen, lr)
        count["n"] += 1
        return (torch.tensor(float("nan")) if count["n"] == bad_step else loss), *rest

    monkeypatch.setattr(loop, "train_step", step)


def test_a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                                                     capsys):
    poison_step(monkeypatch, 11)      # 8 steps per epoch: step 11 is epoch 2, batch 3
    code = main(["train", "lenet", "--data", "synthetic", "--subset", "512", "--batch-size", "64", "--epochs", "3",
                 "--out", str(tmp_path), "--no-progress", "--device", "cpu", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "at step 11 (epoch 2, batch 3)" in err and "end of epoch 1" in err
    (folder,) = tmp_path.iterdir()
    saved = checkpoint.load(folder / "last.pt")
    assert saved["state"]["epoch"] == 1 and saved["state"]["global_step"] == 8
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_an_interrupt_saves_a_checkpoint_at_that_step(tmp_path):
    with pytest.raises(loop.Stopped):
        run.start("lenet", SMALL, options(tmp_path), StopAfter(3))
    (folder,) = (tmp_path / "runs").iterdir()
    state = checkpoint.load(folder / "last.pt")["state"]
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (0, 3, 3)


def test_ctrl_c_in_a_real_process_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    command = [sys.executable, "-m", "netspec", "train", "lenet", "--data", "synthetic", "--epochs", "1000",
               "--batch-size", "32", "--out", str(tmp_path), "--no-progress", "--device", "cpu", "--threads", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*/last.pt")) and time.monotonic() < deadline:   # one epoch done: it is training
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "checkpoint saved" in err and "--resume" in err
    (folder,) = tmp_path.iterdir()
    assert checkpoint.load(folder / "last.pt")["state"]["step_in_epoch"] > 0


def test_missing_data_is_one_message_that_names_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NETSPEC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    absent = {**sources.SOURCES, "fashion-mnist": sources.FASHION_MNIST.__class__(
        **{**vars(sources.FASHION_MNIST), "system_dir": str(tmp_path / "absent")})}
    monkeypatch.setattr(data, "SOURCES", absent)
    code = main(["train", "lenet", "--no-download", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "Fashion-MNIST was not found" in err and "apt-get install dataset-fashion-mnist" in err
    assert "--data-dir" in err and str(tmp_path / "nothing") in err
    assert not list(tmp_path.glob("lenet-*"))


def test_a_resize_that_the_network_cannot_take_is_a_usage_error(tmp_path, capsys):
    code = main(["train", "lenet", "--data", "synthetic", "--resize", "32", "--out", str(tmp_path)])
    assert code == 2 and "does not match the network's input 28×28" in capsys.readouterr().err


# ── eval and export ───────────────────────────────────────────────────────────────────────────────────────────

def test_eval_of_a_run_folder_reproduces_the_best_epochs_test_accuracy(finished, capsys):
    assert main(["eval", str(finished.run_dir), "--subset", "512", "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    best = finished.history[finished.best_epoch - 1]
    assert result["examples"] == 512 and result["epoch"] == finished.best_epoch
    assert result["test_acc"] == pytest.approx(best["test_acc"]) and result["test_loss"] == pytest.approx(
        best["test_loss"], rel=1e-5)


def test_eval_of_a_missing_path_is_a_usage_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2


def example_batch() -> torch.Tensor:
    return torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def reference_output(finished) -> torch.Tensor:
    model = netspec.load("bn_lenet")
    model.load_state_dict(checkpoint.load(finished.run_dir / "best.pt")["model"])
    return model.eval()(example_batch())


def test_exported_safetensors_load_back_with_identical_outputs(finished, tmp_path):
    from safetensors.torch import load_file

    assert main(["export", str(finished.run_dir), "-o", str(tmp_path / "m.safetensors")]) == 0
    model = netspec.load("bn_lenet")
    model.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    assert torch.equal(model.eval()(example_batch()), reference_output(finished))


def test_exported_python_source_with_its_weights_gives_identical_outputs(finished, tmp_path):
    from safetensors.torch import load_file

    assert main(["export", str(finished.run_dir), "-o", str(tmp_path / "model.py")]) == 0
    spec = importlib.util.spec_from_file_location("exported_bn_lenet", tmp_path / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)   # the file netspec generated, as its user would import it
    model = module.BnLenet()
    model.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    assert torch.equal(model.eval()(example_batch()), reference_output(finished))


def test_onnx_export_works_or_names_the_missing_packages(finished, tmp_path, capsys):
    code = main(["export", str(finished.run_dir), "-o", str(tmp_path / "m.onnx")])
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxscript"):
        assert code == 0 and (tmp_path / "m.onnx").stat().st_size > 0
    else:
        assert code == 1 and "pip install onnx onnxscript" in capsys.readouterr().err


def test_init_from_a_run_starts_from_its_best_weights(finished, tmp_path):
    model = run.build_model(netspec.shaped_network("bn_lenet"), Recipe(), options(tmp_path), torch.device("cpu"))
    run.init_weights(model, str(finished.run_dir))                      # what --init-from does before step 1
    assert_same_weights(state_of(model), checkpoint.load(finished.run_dir / "best.pt")["model"])


def test_train_eval_and_export_are_registered_without_importing_torch():
    code = "import sys, netspec.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
    help_text = subprocess.run([sys.executable, "-m", "netspec", "train", "--help"], capture_output=True,
                               text=True, cwd=ROOT).stdout
    for flag in ("--data", "--data-dir", "--epochs", "--batch-size", "--lr", "--optimizer", "--schedule",
                 "--label-smoothing", "--resize", "--device", "--amp", "--no-amp", "--compile", "--seed",
                 "--subset", "--out", "--resume", "--init-from", "--set"):
        assert flag in help_text


def test_bf16_autocast_with_channels_last_trains_on_cpu_too(tmp_path):
    result = run.start("bn_lenet", {**SMALL, "amp": True, "optimizer": "momentum", "lr": 0.05}, options(tmp_path))
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["amp"] and info["channels_last"]
    assert result.history[-1]["train_acc"] > 0.5
    assert all(v.dtype in (torch.float32, torch.int64) for v in result.model.state_dict().values())


@pytest.mark.slow
def test_compile_trains_the_same_network(tmp_path):
    recipe_ = {**SMALL, "optimizer": "momentum", "lr": 0.05}
    eager = run.start("bn_lenet", recipe_, options(tmp_path / "eager"))
    compiled = run.start("bn_lenet", recipe_, options(tmp_path / "compiled", compile=True))
    for a, b in zip(eager.history, compiled.history):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3) and b["train_acc"] == pytest.approx(a["train_acc"],
                                                                                                 abs=0.01)


# ── real data (slow) ──────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="no Fashion-MNIST")
def test_bn_lenet_reaches_080_test_accuracy_in_two_epochs_on_fashion_mnist(tmp_path):
    result = run.start("bn_lenet", {"epochs": 2}, RunOptions(device="cpu", out=str(tmp_path), download=False))
    assert result.history[-1]["test_acc"] >= 0.80
