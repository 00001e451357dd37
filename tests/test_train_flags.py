"""train / eval / export flags and places that cannot be used: one line each, exit 2 for a mistake on the command
line, 1 for a place that cannot be written.  Nothing here trains more than a few steps."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.train import run
from netspec.train.recipe import RunOptions

TINY = ("netspec: 1\nname: tiny\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 2, kernel: 3}\n  - relu\n"
        "  - global_avgpool\n  - flatten\n  - linear: {out: 10}\n")
QUICK = ["--data", "synthetic", "--subset", "32", "--epochs", "1", "--batch-size", "32", "--device", "cpu",
         "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    (out / "tiny.yaml").write_text(TINY)
    return run.start(str(out / "tiny.yaml"), {"data": "synthetic", "epochs": 1, "batch_size": 32},
                     RunOptions(device="cpu", out=str(out / "runs"), subset=32, download=False, threads=1)).run_dir


@pytest.fixture
def spec(tmp_path) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY)
    return tmp_path / "tiny.yaml"


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err, err
    return err.strip()


@pytest.mark.parametrize("flags,message", [
    (["--seed", str(10**23)], "seed must be a 64-bit whole number"),
    (["--batch-size", str(10**23)], "--batch-size must be at most 2,147,483,647"),
    (["--eval-batch-size", str(10**23)], "eval_batch_size must be at most 2,147,483,647"),
    (["--subset", str(10**23)], "--subset must be at most"),
    (["--threads", str(10**23)], "--threads must be at most"),
    (["--epochs", str(10**23)], "epochs must be at most"),
])
def test_huge_numbers_are_usage_errors(spec, tmp_path, capsys, flags, message):
    assert main(["train", str(spec), *QUICK, *flags, "--out", str(tmp_path / "runs")]) == 2
    assert message in one_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_device_cuda_without_cuda_is_one_line(spec, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", str(spec), *QUICK, "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert one_line(capsys) == "netspec: error: CUDA is not available here; use --device cpu or auto"


def test_resume_with_negative_epochs_is_refused(finished, capsys):
    assert main(["train", "--resume", str(finished), "--epochs", "-1", "--device", "cpu"]) == 2
    assert one_line(capsys) == "netspec: error: epochs must be ≥ 1, got -1"


def refuse_writes_under(monkeypatch, folder: Path) -> None:
    """A read-only place, as seen without root: creating anything under `folder` fails with EACCES."""
    real_mkdir, real_mkstemp = Path.mkdir, tempfile.mkstemp

    def mkdir(self, *args, **kwargs):
        if folder in Path(self).parents:
            raise PermissionError(13, "Permission denied")
        return real_mkdir(self, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and (Path(dir) == folder or folder in Path(dir).parents):
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_train_out_onto_a_file_or_a_read_only_place_is_one_line(spec, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    assert main(["train", str(spec), *QUICK, "--out", str(tmp_path / "a-file")]) == 1
    assert one_line(capsys).startswith(f"netspec: error: cannot write {tmp_path / 'a-file'}: ")
    (tmp_path / "locked").mkdir()
    refuse_writes_under(monkeypatch, tmp_path / "locked")
    assert main(["train", str(spec), *QUICK, "--out", str(tmp_path / "locked")]) == 1
    assert one_line(capsys) == f"netspec: error: cannot write {tmp_path / 'locked'}: Permission denied"


@pytest.mark.parametrize("place", ["directory", "under_a_file", "read_only"])
def test_export_onto_a_place_that_cannot_be_written_is_one_line(finished, tmp_path, capsys, monkeypatch, place):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "dir.safetensors").mkdir()
    (tmp_path / "locked").mkdir()
    target = {"directory": tmp_path / "dir.safetensors", "under_a_file": tmp_path / "a-file" / "m.safetensors",
              "read_only": tmp_path / "locked" / "m.safetensors"}[place]
    refuse_writes_under(monkeypatch, tmp_path / "locked")
    assert main(["export", str(finished), "-o", str(target)]) == 1
    line = one_line(capsys)
    assert line.startswith("netspec: error: ") and "cannot write" in line and str(target) in line
    assert (tmp_path / "a-file").read_text() == "x"


def test_export_with_an_unknown_suffix_is_a_usage_error(finished, tmp_path, capsys):
    assert main(["export", str(finished), "-o", str(tmp_path / "m.txt")]) == 2
    assert "the suffix picks the format" in one_line(capsys)


def test_a_spec_read_from_a_pipe_trains_and_is_kept_in_the_run_folder(tmp_path, capsys):
    fifo = tmp_path / "spec-fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(TINY))   # read once, as `train <(cat spec)` is
    writer.start()
    try:
        assert main(["train", str(fifo), *QUICK, "--out", str(tmp_path / "runs")]) == 0, capsys.readouterr().err
    finally:
        writer.join(timeout=10)
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "spec" / "spec-fifo.yaml").read_text() == TINY
    assert main(["eval", str(folder), "--device", "cpu"]) == 0
