"""Training faults: a run killed (SIGKILL) mid-epoch and resumed; damaged checkpoints; a write that fails while
checkpointing; two runs started at the same moment.  CPU only, synthetic data, one thread."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.train import checkpoint, run
from netspec.train.recipe import RunOptions
from netspec.backends.weights import WeightsFileError, read_weights_file

from conftest import REPO

FLAGS = {"data": "synthetic", "batch_size": 16, "epochs": 3, "seed": 1, "lr": 0.05, "optimizer": "momentum"}
CLI_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items()]
# The killed run holds out a validation split: 1,536 of the 2,048 synthetic images train, in batches of 16: 96
# steps an epoch, ~0.5 s each, so a kill lands inside one.
KILLED = {**FLAGS, "val_split": 0.25}
STEPS_PER_EPOCH = 1536 // 16


pytestmark = pytest.mark.usefixtures("keep_thread_count")


def options(out: Path) -> RunOptions:
    return RunOptions(device="cpu", out=str(out), download=False, log_every=1, threads=1)


def train_process(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "netspec", "train", *args, "--device", "cpu", "--threads", "1",
               "--no-progress"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def metrics(folder: Path) -> list[dict]:
    path = folder / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines if line.endswith("}")]  # a line being written may be cut


def weights(state: dict) -> dict:
    return {k: v.detach().clone() for k, v in state.items()}


# ── SIGKILL, then --resume ────────────────────────────────────────────────────────────────────────────────────

def kill_inside_the_second_epoch(out: Path) -> Path:
    process = train_process("bn_lenet", *[f"--{k.replace('_', '-')}={v}" for k, v in KILLED.items()], "--out",
                            str(out), "--log-every", "1")
    deadline = time.monotonic() + 120
    folder = None
    while time.monotonic() < deadline and process.poll() is None:
        folders = list(out.glob("bn_lenet-*"))
        folder = folders[0] if folders else None
        if folder and any(r["kind"] == "step" and r["step"] > STEPS_PER_EPOCH + 5 for r in metrics(folder)):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return folder


def test_a_run_killed_mid_epoch_resumes_and_ends_as_if_never_killed_losing_at_most_that_epoch(tmp_path):
    folder = kill_inside_the_second_epoch(tmp_path / "runs")
    saved = checkpoint.load(folder / "last.pt")
    done = saved["state"]["epoch"]
    assert saved["state"]["step_in_epoch"] == 0 and done >= 1          # the last epoch end, intact
    logged = max(r["step"] for r in metrics(folder))
    assert logged - saved["state"]["global_step"] < STEPS_PER_EPOCH   # lost: less than the interrupted epoch

    resumed = train_process("--resume", str(folder), "--log-every", "1")
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("epoch ")] == [
        f"epoch {e}/3" for e in range(done + 1, 4)]                    # only the lost epochs are trained again
    records = metrics(folder)
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2, 3]
    steps = [r["step"] for r in records if r["kind"] == "step"]
    assert steps == list(range(1, 3 * STEPS_PER_EPOCH + 1))            # every step logged once, none twice
    final = checkpoint.load(folder / "last.pt")
    assert final["state"]["epoch"] == 3 and final["state"]["global_step"] == 3 * STEPS_PER_EPOCH

    whole = run.start("bn_lenet", KILLED, options(tmp_path / "whole"))  # the same run, never killed
    different = [k for k, v in weights(last_weights(whole)).items() if not torch.equal(v, final["model"][k])]
    assert not different, f"resumed weights differ from an uninterrupted run: {different[:4]}"
    # the same final metrics: every epoch's train and validation numbers, the kept epoch, its test result
    timeless = lambda r: {k: v for k, v in r.items() if k not in ("examples_per_s", "train_time")}
    assert [timeless(r) for r in records if r["kind"] in ("epoch", "test")] == \
        [timeless(r) for r in metrics(whole.run_dir) if r["kind"] in ("epoch", "test")]
    csv_rows = lambda f: [",".join(line.split(",")[:12]) for line in (f / "metrics.csv").read_text().splitlines()]
    assert csv_rows(folder) == csv_rows(whole.run_dir)


def last_weights(result) -> dict:
    """The run's last weights (the returned model holds the kept ones, which may be an earlier epoch's)."""
    return checkpoint.load(result.run_dir / "last.pt")["model"]


# ── damaged checkpoints ───────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished two-epoch LeNet run whose files the damage tests copy."""
    out = tmp_path_factory.mktemp("finished")
    result = run.start("lenet", {**FLAGS, "epochs": 2, "batch_size": 64},
                       RunOptions(device="cpu", out=str(out), download=False, subset=256, threads=1))
    return result.run_dir


def middle_of_largest_record(path: Path) -> int:
    """The offset of a byte in the middle of the archive's largest record (a tensor's data)."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = int.from_bytes(handle.read(2), "little"), int.from_bytes(handle.read(2), "little")
    return info.header_offset + 30 + name_length + extra_length + info.file_size // 2


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[middle_of_largest_record(path)] ^= 0x10
    path.write_bytes(bytes(data))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def foreign(path: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, path)   # a valid torch file, not a netspec checkpoint


def best_as_last(path: Path) -> None:
    path.write_bytes((path.parent / "best.pt").read_bytes())   # a checkpoint without optimizer or RNG state


DAMAGE = {
    truncate: "not a PyTorch weights file, or a truncated one",
    flip_a_bit: "damaged: the record `",
    empty: "not a PyTorch weights file, or a truncated one",
    garbage: "not a PyTorch weights file, or a truncated one",
    foreign: "not a netspec checkpoint",
    best_as_last: "the checkpoint lacks `optimizer`",
}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_run(source: Path, target: Path) -> Path:
    for rel, data in snapshot(source).items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)
    return target


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__ for d in DAMAGE])
def test_resuming_from_a_damaged_checkpoint_is_one_clear_error_that_overwrites_nothing(finished, tmp_path, capsys,
                                                                                      damage):
    folder = copy_run(finished, tmp_path / "run")
    damage(folder / "last.pt")
    before = snapshot(folder)
    assert main(["train", "--resume", str(folder), "--epochs", "3", "--device", "cpu", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and err.startswith(f"netspec: error: {folder / 'last.pt'}: ")
    assert DAMAGE[damage] in err
    assert snapshot(folder) == before


@pytest.mark.parametrize("damage", [truncate, flip_a_bit], ids=["truncate", "flip_a_bit"])
def test_eval_of_a_damaged_best_checkpoint_is_one_clear_error(finished, tmp_path, capsys, damage):
    folder = copy_run(finished, tmp_path / "run")
    damage(folder / "best.pt")
    assert main(["eval", str(folder / "best.pt"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and DAMAGE[damage] in err


def test_a_flipped_bit_is_caught_although_torch_load_alone_would_load_it(finished, tmp_path):
    """Why the CRC check exists: without it, this damaged file loads as wrong weights without a word."""
    path = copy_run(finished, tmp_path / "run") / "best.pt"
    flip_a_bit(path)
    silently = torch.load(path, weights_only=True)["model"]
    intact = torch.load(finished / "best.pt", weights_only=True)["model"]
    assert any(not torch.equal(silently[k], intact[k]) for k in intact)
    with pytest.raises(checkpoint.CheckpointError, match="fails its checksum"):
        checkpoint.load(path)


# ── a write that fails while checkpointing ────────────────────────────────────────────────────────────────────

def failing_after(monkeypatch, calls: int, where: str, name: str = "") -> None:
    """torch.save writes half a file then raises (a full disk), or os.replace raises, from the `calls`-th call
    (counting only the writes of `name`, when given: last.pt is the checkpoint with optimizer state, best.pt the
    one without)."""
    count = {"n": 0}
    real_save, real_replace = torch.save, os.replace

    def save(obj, f, *args, **kwargs):
        if name and ("optimizer" in obj) != (name == "last.pt"):
            return real_save(obj, f, *args, **kwargs)
        count["n"] += 1
        if where == "save" and count["n"] >= calls:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):
        if where == "replace" and str(dst).endswith(".pt"):
            count["n"] += 1
            if count["n"] >= calls:
                raise OSError(5, "Input/output error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("where", ["save", "replace"])
def test_a_failing_checkpoint_write_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(tmp_path,
                                                                                              monkeypatch, where):
    path = checkpoint.save(tmp_path / "last.pt", {"model": {"w": torch.ones(3)}})
    before = path.read_bytes()
    failing_after(monkeypatch, 1, where)
    with pytest.raises(checkpoint.CheckpointError, match="cannot write it .*; the previous last.pt is intact"):
        checkpoint.save(path, {"model": {"w": torch.zeros(3)}})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.ones(3))


def test_training_stops_with_one_line_when_a_checkpoint_cannot_be_written_and_keeps_the_last_good_one(
        tmp_path, monkeypatch, capsys):
    failing_after(monkeypatch, 2, "save", "last.pt")   # epoch 2's last.pt
    code = main(["train", "lenet", *CLI_FLAGS, "--subset", "128", "--out", str(tmp_path), "--device", "cpu",
                 "--threads", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    (line,) = [line for line in err.splitlines() if line.startswith("netspec: error:")]
    assert "last.pt: cannot write it ([Errno 28] No space left on device); the previous last.pt is intact" in line
    (folder,) = tmp_path.iterdir()
    monkeypatch.undo()
    assert checkpoint.load(folder / "last.pt")["state"]["epoch"] == 1
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ── runs started at the same moment ───────────────────────────────────────────────────────────────────────────

CREATE_AT = """
import sys, time
from pathlib import Path
from netspec.train.rundir import create
start = float(sys.argv[2])
while time.time() < start:
    pass
for _ in range(25):
    print(create(Path(sys.argv[1]), "net"))
"""


def test_two_processes_starting_runs_at_the_same_moment_never_share_a_folder(tmp_path):
    start = str(time.time() + 1.5)  # both spin until the same instant, then create 25 run folders each
    processes = [subprocess.Popen([sys.executable, "-c", CREATE_AT, str(tmp_path), start], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
    made = [line for p in processes for line in p.communicate(timeout=60)[0].splitlines()]
    assert all(p.returncode == 0 for p in processes)
    assert len(made) == 50 and len(set(made)) == 50 and len(list(tmp_path.iterdir())) == 50


def test_a_run_with_a_list_given_by_set_writes_checkpoints_that_load_back(tmp_path, capsys):
    """`--set widths=[4, 8]` once reached the checkpoint as the YAML loader's own list class, which
    `torch.load(weights_only=True)` refuses: such a run could never be resumed or evaluated."""
    spec = tmp_path / "net.yaml"
    spec.write_text("netspec: 1\nname: net\nparams: {widths: [2, 2]}\ninput: [1, 28, 28]\nbody:\n"
                    "  - conv: {out: \"${widths[0]}\", kernel: 5}\n  - relu\n  - global_avgpool\n  - flatten\n"
                    "  - linear: {out: 10}\n")
    assert main(["train", str(spec), "--set", "widths=[4, 8]", "--data", "synthetic", "--subset", "64", "--epochs",
                 "1", "--out", str(tmp_path / "runs"), "--device", "cpu", "--threads", "1", "--no-progress"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    saved = checkpoint.load(folder / "last.pt")
    assert saved["spec"]["params"] == {"widths": [4, 8]} and saved["model"]["0.weight"].shape[0] == 4


def test_any_bytes_that_are_not_an_archive_read_as_not_a_weights_file(tmp_path):
    """torch's legacy unpickler fails on random bytes with IndexError, UnicodeDecodeError and more (about 7 % of
    4 KiB files); every one of them must read as the same one-line verdict."""
    rng = random.Random(0)
    path = tmp_path / "random.pt"
    verdicts = set()
    for _ in range(300):
        # Half of them start like a legacy torch.save file (a pickle, protocol 2), so the unpickler gets going.
        path.write_bytes(b"\x80\x02" * rng.randint(0, 1) + bytes(rng.getrandbits(8) for _ in range(256)))
        with pytest.raises(WeightsFileError) as caught:
            read_weights_file(path)
        verdicts.add(str(caught.value).removeprefix(f"{path}: "))
    assert verdicts == {"not a PyTorch weights file, or a truncated one"}


# ── checkpoints with the format tag but malformed fields ──────────────────────────────────────────────────────

def tensor_bytes(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.uint8)


MALFORMED = {
    "spec_not_a_mapping": ("spec", []),
    "spec_main_a_number": ("spec", {"main": 3, "files": {"3": "x"}}),
    "spec_text_a_number": ("spec", {"main": "a.yaml", "files": {"a.yaml": 7}}),
    "state_a_string": ("state", "epoch 2"),
    "state_unknown_field": ("state", {"epoch": 1, "mystery": 2}),
    "state_epoch_a_string": ("state", {"epoch": "1"}),
    "state_history_of_strings": ("state", {"epoch": 1, "history": ["x"]}),
    "options_a_list": ("options", [1]),
    "options_subset_negative": ("options", {"subset": -5}),
    "rng_empty": ("rng", {}),
    "rng_torch_a_string": ("rng", {"torch": "x", "aug": tensor_bytes(8), "cuda": None}),
    "recipe_a_list": ("recipe", [1, 2]),
    "recipe_epochs_a_string": ("recipe", {"epochs": "3"}),
    "recipe_lr_negative": ("recipe", {"lr": -1.0}),
    "recipe_augment_a_number": ("recipe", {"augment": 5}),
    "model_a_list": ("model", [1]),
    "optimizer_a_string": ("optimizer", "adam"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_checkpoint_with_a_malformed_field_is_one_line_naming_it_for_resume_and_eval(finished, tmp_path, capsys,
                                                                                       case):
    key, value = MALFORMED[case]
    folder = copy_run(finished, tmp_path / "run")
    saved = torch.load(folder / "last.pt", weights_only=True)
    saved[key] = value
    torch.save(saved, folder / "last.pt")
    before = snapshot(folder)
    assert main(["train", "--resume", str(folder), "--epochs", "3", "--device", "cpu", "--no-progress"]) == 1
    assert main(["eval", str(folder / "last.pt"), "--device", "cpu"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert lines[0].startswith(f"netspec: error: {folder / 'last.pt'}: not a valid netspec checkpoint: `{key}")
    assert snapshot(folder) == before


def test_a_generator_state_of_the_wrong_size_is_a_checkpoint_error_too(finished, tmp_path, capsys):
    folder = copy_run(finished, tmp_path / "run")
    saved = torch.load(folder / "last.pt", weights_only=True)
    saved["rng"]["torch"] = tensor_bytes(8)      # the right type, but no generator's state
    torch.save(saved, folder / "last.pt")
    assert main(["train", "--resume", str(folder), "--epochs", "3", "--device", "cpu", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "not a valid netspec checkpoint: a generator state does not load" in err and "internal" not in err


# ── metrics.jsonl cut short ───────────────────────────────────────────────────────────────────────────────────

def test_resume_drops_a_torn_last_metrics_line_and_says_so(finished, tmp_path, capsys):
    folder = copy_run(finished, tmp_path / "run")
    with open(folder / "metrics.jsonl", "a") as stream:
        stream.write('{"kind": "step", "epoch": 3, "st')          # a disk-full append, cut mid-record
    assert main(["train", "--resume", str(folder), "--epochs", "3", "--device", "cpu", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"netspec: {folder / 'metrics.jsonl'}: dropped its torn last line" in err
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2, 3]


def test_a_damaged_line_before_the_last_is_one_error_naming_the_file(finished, tmp_path, capsys):
    folder = copy_run(finished, tmp_path / "run")
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    (folder / "metrics.jsonl").write_text("\n".join([lines[0][:10], *lines[1:]]) + "\n")
    assert main(["train", "--resume", str(folder), "--epochs", "3", "--device", "cpu", "--no-progress"]) == 1
    assert capsys.readouterr().err == f"netspec: error: {folder / 'metrics.jsonl'}: line 1 is not a JSON record; " \
                                      "the file is damaged\n"


def test_a_full_disk_while_logging_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    real_open = os.open

    def open_full(path, flags, *args, **kwargs):   # metrics.jsonl on a full disk: /dev/full answers ENOSPC
        if str(path).endswith("metrics.jsonl") and flags & os.O_APPEND:
            return real_open("/dev/full", os.O_WRONLY)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_full)
    code = main(["train", "lenet", *CLI_FLAGS, "--subset", "64", "--epochs", "1", "--out", str(tmp_path),
                 "--device", "cpu", "--threads", "1", "--no-progress", "--log-every", "1"])
    err = capsys.readouterr().err
    (folder,) = tmp_path.iterdir()
    assert code == 1 and [line for line in err.splitlines() if line.startswith("netspec:")
                          and "TensorBoard" not in line] == [
        f"netspec: error: cannot write {folder / 'metrics.jsonl'}: No space left on device"]


# ── best.pt must never be claimed before it is written ───────────────────────────────────────────────────────

def best_epoch_claims(folder: Path) -> dict[str, int]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        exported = int(weights.metadata()["epoch"])
    return {"last.pt": checkpoint.load(folder / "last.pt")["state"]["best_epoch"],
            "best.pt": checkpoint.load(folder / "best.pt")["state"]["epoch"], "model.safetensors": exported}


def test_a_failed_best_write_is_never_recorded_as_the_best_and_resume_repairs_it(tmp_path, monkeypatch, capsys):
    failing_after(monkeypatch, 2, "save", "best.pt")   # the second best epoch's best.pt: a full disk
    code = main(["train", "lenet", *CLI_FLAGS, "--subset", "128", "--out", str(tmp_path), "--device", "cpu",
                 "--threads", "1", "--no-progress"])
    assert code == 1, capsys.readouterr().err
    assert "best.pt: cannot write it" in capsys.readouterr().err
    monkeypatch.undo()
    (folder,) = tmp_path.iterdir()
    claims = best_epoch_claims(folder)
    assert len(set(claims.values())) == 1, claims       # last.pt names the epoch best.pt really holds
    assert main(["train", "--resume", str(folder), "--device", "cpu", "--threads", "1", "--no-progress"]) == 0
    claims = best_epoch_claims(folder)
    assert len(set(claims.values())) == 1, claims
    summary = (folder / "summary.txt").read_text()
    assert f"kept epoch {claims['best.pt']};" in summary
    capsys.readouterr()
    assert main(["eval", str(folder), "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["epoch"] == claims["best.pt"]
