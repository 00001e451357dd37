"""`netspec eval RUN`: top-1, top-5 (more than five classes), per-class accuracy with the data's class names, the
confusion matrix as confusion.png and confusion.json, all of it with --json; checked against the network's own
predictions.  CPU; a tiny network on synthetic data, a real Fashion-MNIST subset, a two-class image folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.train import data, run
from netspec.train.export import load_run
from netspec.train.recipe import RunOptions

from test_train_validation import image_folder

TINY = ("netspec: 1\nname: tiny\nparams: {classes: 10}\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 4, kernel: 3}\n"
        "  - relu\n  - global_avgpool\n  - flatten\n  - linear: {out: $classes}\n")
FASHION = Path("/usr/share/datasets/fashion-mnist")


pytestmark = pytest.mark.usefixtures("keep_thread_count")


def train(tmp: Path, recipe: dict, **params) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tiny.yaml").write_text(TINY)
    return run.start(str(tmp / "tiny.yaml"), {"epochs": 1, "batch_size": 32, "lr": 0.2, "optimizer": "momentum",
                                              **recipe},
                     RunOptions(device="cpu", out=str(tmp / "runs"), subset=256, download=False, threads=1,
                                params=params)).run_dir


def evaluate(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["eval", *args, "--device", "cpu"])
    return code, capsys.readouterr().out


def test_eval_reports_what_the_networks_own_predictions_give(tmp_path, capsys):
    folder = train(tmp_path, {"data": "synthetic"})
    code, out = evaluate(capsys, str(folder), "--json", "--subset", "200")
    result = json.loads(out)
    assert code == 0 and result["examples"] == 200 and result["classes"] == [f"class{i}" for i in range(10)]
    # the same numbers from the model's logits, computed here independently
    model = load_run(folder).model
    test = data.synthetic((1, 8, 8)).subset(200)
    with torch.no_grad():
        logits = model(test.test_x.float() / 255)
    predicted, labels = logits.argmax(1), test.test_y
    expected = [[int(((labels == t) & (predicted == p)).sum()) for p in range(10)] for t in range(10)]
    assert result["confusion"] == expected
    assert result["test_acc"] == pytest.approx(float((predicted == labels).float().mean()))
    top5 = (logits.topk(5, 1).indices == labels[:, None]).any(1).float().mean()
    assert result["top5"] == pytest.approx(float(top5)) and result["top5"] >= result["test_acc"]
    for i, name in enumerate(result["classes"]):
        assert result["per_class"][name] == pytest.approx(expected[i][i] / sum(expected[i]))
    saved = json.loads((folder / "confusion.json").read_text())
    assert saved["confusion"] == expected and saved["per_class"] == result["per_class"]
    assert (folder / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["files"] == [str(folder / "confusion.json"), str(folder / "confusion.png")]


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed")
def test_eval_names_fashion_mnists_classes_and_writes_where_asked(tmp_path, capsys):
    folder = run.start("lenet", {"epochs": 1, "batch_size": 64, "lr": 0.5},
                       RunOptions(device="cpu", out=str(tmp_path / "runs"), subset=256, download=False,
                                  threads=1)).run_dir
    code, out = evaluate(capsys, str(folder), "--subset", "300", "--out", str(tmp_path / "eval"))
    lines = out.splitlines()
    assert code == 0 and ", top-5 " in lines[0] and "on 300 fashion-mnist examples" in lines[0]
    assert lines[1] == "per-class accuracy:"
    names = [line.split()[0] for line in lines[2:12]]
    assert names == ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                     "ankle"]                                            # "ankle boot"
    assert lines[-1] == (f"confusion matrix: {tmp_path / 'eval' / 'confusion.json'}, "
                         f"{tmp_path / 'eval' / 'confusion.png'}")
    assert not (folder / "confusion.png").exists()


def test_eval_of_five_classes_or_fewer_has_no_top5(tmp_path, capsys):
    root = image_folder(tmp_path / "pets", {"train": 6, "test": 3})
    folder = train(tmp_path, {"data": f"folder:{root}", "batch_size": 4}, classes=2)
    code, out = evaluate(capsys, str(folder), "--json")
    result = json.loads(out)
    assert code == 0 and result["top5"] is None and list(result["per_class"]) == ["cat", "dog"]
    assert sum(map(sum, result["confusion"])) == 6
    code, out = evaluate(capsys, str(folder))
    assert "top-5" not in out and out.splitlines()[2].startswith("  cat ")


def test_eval_on_data_with_another_class_count_is_a_usage_error(tmp_path, capsys):
    root = image_folder(tmp_path / "pets", {"train": 2, "test": 1})
    folder = train(tmp_path, {"data": "synthetic"})
    capsys.readouterr()
    assert main(["eval", str(folder), "--data", f"folder:{root}", "--device", "cpu"]) == 2
    assert "has 2 classes but the network outputs [10]" in capsys.readouterr().err
