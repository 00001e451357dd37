"""Stopping DDP runs: Ctrl-C under torchrun (the signal reaches every rank twice) and a mid-epoch stop and resume
whose epoch totals equal an uninterrupted run's.  Two gloo processes on the CPU, started by torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from netspec.train import checkpoint, run
from netspec.train.recipe import RunOptions

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def steps_logged(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if line.endswith("}") and json.loads(line)["kind"] == "step")


def children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent(int(p.name)) == pid]


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_ctrl_c_under_torchrun_saves_a_checkpoint_that_resumes(tmp_path):
    """A terminal's Ctrl-C sends SIGINT to the agent and (where the ranks share the terminal's process group, as
    they did before torch put each rank in a session of its own; or a job scheduler signalling every process) to
    both ranks; the agent then forwards it to the ranks a second time.  That repeat must not abort the stop the
    first one asked for."""
    command = [*TORCHRUN, "-m", "netspec", "train", "lenet", "--data", "synthetic", "--subset", "256", "--epochs",
               "1000", "--batch-size", "32", "--log-every", "1", "--out", str(tmp_path), "--no-progress",
               "--device", "cpu", "--threads", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None \
                and not any(steps_logged(m) >= 2 for m in tmp_path.glob("*/metrics.jsonl")):
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1][-3000:]
        ranks = children(process.pid)
        assert len(ranks) == 2
        for rank in ranks:                     # each rank leads a process group of its own (torch ≥ 2.5)
            os.killpg(rank, signal.SIGINT)
        time.sleep(0.2)                        # the ranks have seen it (they may still be saving)
        os.killpg(process.pid, signal.SIGINT)  # the terminal's SIGINT to torchrun, which forwards it
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    (folder,) = tmp_path.iterdir()
    assert (folder / "last.pt").is_file(), err[-3000:]
    assert "checkpoint saved" in err and "KeyboardInterrupt" not in err, err[-3000:]
    saved = checkpoint.load(folder / "last.pt")["state"]
    assert saved["global_step"] >= 2
    resumed = run.resume(folder, RunOptions(device="cpu", download=False, threads=1), saved["epoch"] + 1)
    assert [r["epoch"] for r in resumed.history] == list(range(1, saved["epoch"] + 2))


def test_a_repeated_stop_signal_within_the_window_is_the_same_request(monkeypatch):
    from netspec.cli import train as train_cli

    clock = [100.0]
    monkeypatch.setattr(train_cli.time, "monotonic", lambda: clock[0])
    ui = train_cli.TerminalUI(progress=False)
    ui.on_sigint(signal.SIGINT, None)
    clock[0] += 0.5
    ui.on_sigint(signal.SIGINT, None)        # torchrun's agent forwarding the terminal's Ctrl-C: no abort
    assert ui.stop_requested()
    clock[0] += train_cli.REPEAT_WINDOW
    try:
        ui.on_sigint(signal.SIGTERM, None)   # a second request, seconds later: abort now
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("a second stop request after the window did not abort")
