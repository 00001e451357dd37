"""`netspec.train(spec, train_data=…, val_data=…, test_data=…)`: training from Python on a torch Dataset or on
tensors in memory, into the same run folder as the CLI's; resume from Python; bad data as one DataError line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import netspec
from netspec.cli import main
from netspec.train import data, run
from netspec.train.datasets import DataError

from conftest import REPO

TINY = ("netspec: 1\nname: tiny\nparams: {classes: 3}\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 4, kernel: 3}\n"
        "  - relu\n  - global_avgpool\n  - flatten\n  - linear: {out: $classes}\n")
SETTINGS = {"epochs": 2, "batch_size": 16, "lr": 0.2, "optimizer": "momentum", "device": "cpu", "threads": 1}


pytestmark = pytest.mark.usefixtures("keep_thread_count")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


def three_classes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images in [0, 1]: class k is noise around brightness 0.15 + 0.35 k (learnable by the tiny network,
    which averages over positions)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=gen)
    images = 0.15 + 0.35 * labels[:, None, None] + 0.2 * torch.rand(n, 8, 8, generator=gen)  # (N, H, W)
    return images, labels


class Pairs(torch.utils.data.Dataset):
    """A map-style Dataset with class names, returning (uint8 image (1, 8, 8), int label)."""

    classes = ["top", "middle", "bottom"]

    def __init__(self, images, labels):
        self.images, self.labels = (images * 255).round().to(torch.uint8).unsqueeze(1), labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def test_tensors_and_a_dataset_train_into_the_same_run_folder_as_the_cli(spec, tmp_path):
    train_x, train_y = three_classes(192, 0)
    result = netspec.train(spec, train_data=Pairs(train_x, train_y), val_data=three_classes(48, 1),
                           test_data=three_classes(64, 2), out=str(tmp_path), name="mine", **SETTINGS)
    folder = result.run_dir
    assert folder == tmp_path / "mine"
    assert {"run.json", "metrics.jsonl", "metrics.csv", "curves.png", "summary.txt", "last.pt", "best.pt",
            "model.safetensors", "spec"} <= {p.name for p in folder.iterdir()}
    info = json.loads((folder / "run.json").read_text())
    assert info["data"] == {"name": "python", "train": 192, "test": 64, "val": 48,
                            "classes": ["top", "middle", "bottom"]}
    assert info["recipe"]["data"] == "python" and info["selection"].startswith("the epoch with the best validation")
    assert result.test["examples"] == 64 and result.test["test_acc"] > 0.6      # chance is 1/3
    assert all("val_acc" in r for r in result.history)


def test_tensors_of_uint8_or_float_train_alike(spec, tmp_path):
    """A uint8 image means pixel/255, a float one is taken as it is: the same images either way, the same run."""
    x, y = three_classes(64, 3)
    as_bytes = (x * 255).round().to(torch.uint8)
    a = netspec.train(spec, train_data=(as_bytes, y), out=str(tmp_path / "a"), **SETTINGS)
    b = netspec.train(spec, train_data=(as_bytes.float() / 255, y), out=str(tmp_path / "b"), **SETTINGS)
    assert [r["loss"] for r in a.history] == pytest.approx([r["loss"] for r in b.history], rel=1e-5)
    assert a.test is None and not any("test_acc" in r for r in a.history)     # no test set given: none run


def test_a_run_on_python_data_resumes_from_python_and_the_cli_says_how(spec, tmp_path, capsys):
    train_data, val_data = three_classes(96, 4), three_classes(32, 5)
    whole = netspec.train(spec, train_data=train_data, val_data=val_data, out=str(tmp_path / "a"),
                          **{**SETTINGS, "epochs": 3})
    first = netspec.train(spec, train_data=train_data, val_data=val_data, out=str(tmp_path / "b"), **SETTINGS)
    assert main(["train", "--resume", str(first.run_dir), "--epochs", "3", "--device", "cpu"]) == 1
    assert "netspec.train(resume=RUN_DIR, train_data=" in capsys.readouterr().err
    resumed = netspec.train(resume=first.run_dir, train_data=train_data, val_data=val_data, epochs=3,
                            device="cpu", threads=1)
    assert [r["val_acc"] for r in resumed.history] == [r["val_acc"] for r in whole.history]


def test_val_split_holds_out_part_of_python_data(spec, tmp_path):
    result = netspec.train(spec, train_data=three_classes(100, 6), val_split=0.2, out=str(tmp_path),
                           **{**SETTINGS, "epochs": 1})
    assert json.loads((result.run_dir / "run.json").read_text())["data"]["val"] == 20


@pytest.mark.parametrize("bad, says", [
    ((torch.zeros(4, 2, 2, 2, 2), torch.zeros(4, dtype=torch.long)), "images must be (N, C, H, W) or (N, H, W)"),
    ((torch.zeros(4, 8, 8), torch.zeros(4)), "labels must be whole numbers"),
    ((torch.zeros(4, 8, 8), torch.zeros(3, dtype=torch.long)), "4 images but 3 labels"),
    ((torch.full((4, 8, 8), float("nan")), torch.zeros(4, dtype=torch.long)), "NaN or infinite"),
    ((torch.zeros(4, 8, 8), torch.tensor([0, 1, 2, -1])), "label -1 is not one of its 3 classes"),
    ("images.npy", "expected a torch.utils.data.Dataset"),
])
def test_data_that_cannot_be_trained_on_is_one_data_error(bad, says):
    with pytest.raises(DataError) as caught:
        netspec.train.api.data_set(bad, classes=["a", "b", "c"])
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_settings_that_are_neither_recipe_nor_options_are_refused(spec):
    with pytest.raises(TypeError, match="unexpected setting 'epoch'"):
        netspec.train(spec, train_data=three_classes(8, 0), epoch=3)


def test_netspec_train_is_callable_and_importing_netspec_imports_no_torch():
    code = ("import sys, netspec; assert callable(netspec.train); import netspec.train.run; "
            "assert callable(netspec.train) and netspec.train.run.start; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"   # netspec.train.run imports torch; `import netspec` alone does not:
    out = subprocess.run([sys.executable, "-c", "import sys, netspec; print('torch' in sys.modules)"], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Fashion-MNIST not installed")
def test_fashion_mnist_tensors_from_python_train_with_their_class_names(tmp_path):
    fm = data.load_dataset("fashion-mnist", (1, 28, 28), download=False)
    result = netspec.train("lenet", train_data=(fm.train_x[:384], fm.train_y[:384]),
                           val_data=(fm.train_x[384:512].float() / 255, fm.train_y[384:512]),
                           test_data=(fm.test_x[:256], fm.test_y[:256]), classes=fm.classes, out=str(tmp_path),
                           **{**SETTINGS, "epochs": 1, "batch_size": 64, "lr": 0.05})
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["data"]["classes"][-1] == "ankle boot" and (info["data"]["train"], info["data"]["val"]) == (384, 128)
    from netspec.train.loop import evaluate_on

    again = evaluate_on(result.model, fm.test_x[:256], fm.test_y[:256], (28, 28), 1024)   # the kept weights
    assert result.test["examples"] == 256 and result.test["test_acc"] == again[1]


def test_a_class_count_mismatch_from_python_is_explained_in_python_terms(spec, tmp_path):
    from netspec.train.recipe import RecipeError

    images, labels = three_classes(16, 0)
    with pytest.raises(RecipeError) as caught:
        netspec.train(spec, train_data=(images, labels % 2), out=str(tmp_path), **SETTINGS)
    assert str(caught.value) == ("the data given from Python has 2 classes but the network outputs [3]; they must "
                                 "be equal, e.g. `netspec.train(spec, …, params={'num_classes': 2})`")
    assert "--set" not in str(caught.value) and not (tmp_path / "runs").exists()
