"""The checks of netspec's CUDA path that only a real CUDA device can make, for bench/gpu.py (`--checks-only` runs
them alone).  Each records {"passed": bool, ...} or {"skipped": reason}; on `--device cpu` (a rehearsal) the
CUDA-only ones are skipped and the rest run on the CPU.  Tiny sizes throughout: BN-LeNet, 256 synthetic
examples, one epoch, so that all of them take well under two minutes on a GPU.

  train_eval        `netspec train` then `netspec eval` of the run: the same test accuracy and loss (eval runs
                    as the run trained), and the run's first line names the precision the device implies
  cpu_load          last.pt loads with torch.load(weights_only=True, map_location=None) in a child process that
                    sees no GPU (CUDA_VISIBLE_DEVICES=""): every tensor on the CPU
  cudnn_benchmark   torch.backends.cudnn.benchmark as the trainer set it (netspec.train.run.start in-process)
  device_index      --device cuda:0 trains; cuda:COUNT (one past the last visible GPU) is one line, exit 2
  torchrun          torchrun --nproc_per_node=1 (2 where two GPUs are visible) exits 0; --sync-bn under it is
                    refused for one process (docs/training.md), or trains with two
  resume_cpu_cuda   a run trained 1 epoch on the CPU resumed for 1 more on CUDA: exit 0, no reseed line (the
                    stop was at an epoch boundary)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SPEC = "bn_lenet"
TINY = ["--data", "synthetic", "--subset", "256", "--batch-size", "64", "--epochs", "1", "--no-progress"]
TIMEOUT_S = 120  # one child process; a CUDA start-up is a few seconds


def netspec(args: list[str], env: dict | None = None, torchrun: int | None = None) -> subprocess.CompletedProcess:
    """`python -m netspec ARGS` (under torchrun with `torchrun` processes) in the checkout."""
    launcher = ["-m", "torch.distributed.run", f"--nproc_per_node={torchrun}", "--standalone"] if torchrun else []
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *launcher, "-m", "netspec", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def outcome(proc: subprocess.CompletedProcess) -> dict:
    return {"rc": proc.returncode, "stderr_tail": proc.stderr[-600:], "stdout_tail": proc.stdout[-300:]}


def run_folder(proc: subprocess.CompletedProcess) -> Path:
    """The run folder a `netspec train` names in its first line (`run folder DIR: …`)."""
    line = next(line for line in proc.stderr.splitlines() if line.startswith("run folder "))
    return Path(line[len("run folder "):].split(": ", 1)[0])


def expected_precision(device: str) -> str:
    if device == "cpu":
        return "fp32"
    from netspec.train.devices import has_native_bf16

    return "bf16 autocast" if has_native_bf16(torch.device(device)) else "fp32 (compute capability"


def check_train_eval(ctx: dict) -> dict:
    train = netspec(["train", SPEC, *TINY, "--device", ctx["device"], "--out", str(ctx["work"] / "runs")])
    if train.returncode:
        return {"passed": False, "train": outcome(train)}
    folder = run_folder(train)
    ctx["run"] = folder
    first = next(line for line in train.stderr.splitlines() if line.startswith("run folder "))
    recorded = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    recorded = [r for r in recorded if r.get("kind") == "epoch"][-1]
    evaluated = netspec(["eval", str(folder), "--subset", "256", "--device", ctx["device"], "--json"])
    if evaluated.returncode:
        return {"passed": False, "first_line": first, "eval": outcome(evaluated)}
    got = json.loads(evaluated.stdout)
    precision = expected_precision(ctx["device"])
    loss_diff = abs(got["test_loss"] - recorded["test_loss"])
    return {"passed": got["test_acc"] == recorded["test_acc"] and loss_diff <= 1e-5 * max(1.0, recorded["test_loss"])
            and f", {precision}" in first and got["amp"] == (precision == "bf16 autocast"),
            "first_line": first, "expected_precision": precision,
            "run": {k: recorded[k] for k in ("test_acc", "test_loss")},
            "eval": {k: got[k] for k in ("test_acc", "test_loss", "device", "amp", "channels_last")},
            "loss_abs_diff": loss_diff}


CPU_LOAD = """
import json, sys, torch
saved = torch.load(sys.argv[1], weights_only=True, map_location=None)
devices = set()
def walk(x):
    if isinstance(x, torch.Tensor): devices.add(str(x.device))
    elif isinstance(x, dict): [walk(v) for v in x.values()]
    elif isinstance(x, (list, tuple)): [walk(v) for v in x]
walk(saved)
print(json.dumps({"devices": sorted(devices), "cuda_available": torch.cuda.is_available()}))
"""


def check_cpu_load(ctx: dict) -> dict:
    if "run" not in ctx:
        return {"skipped": "no run folder: train_eval failed"}
    proc = subprocess.run([sys.executable, "-c", CPU_LOAD, str(ctx["run"] / "last.pt")], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    if proc.returncode:
        return {"passed": False, **outcome(proc)}
    got = json.loads(proc.stdout)
    return {"passed": got["devices"] == ["cpu"] and not got["cuda_available"], "trained_on": ctx["device"], **got}


def check_cudnn_benchmark(ctx: dict) -> dict:
    from netspec.train import run
    from netspec.train.recipe import RunOptions

    torch.backends.cudnn.benchmark = False  # bench/gpu.py sets it for its own timing: start from off
    run.start(SPEC, {"data": "synthetic", "epochs": 1, "batch_size": 64},
              RunOptions(device=ctx["device"], subset=256, out=str(ctx["work"] / "runs"), progress=False))
    value, expected = torch.backends.cudnn.benchmark, ctx["device"] != "cpu"
    return {"passed": value is expected, "after_run": value, "expected": expected}


def cuda_only(check):
    def guarded(ctx: dict) -> dict:
        if ctx["device"] == "cpu":
            return {"skipped": "needs a CUDA device (this is the CPU rehearsal)"}
        return check(ctx)
    return guarded


@cuda_only
def check_device_index(ctx: dict) -> dict:
    count = torch.cuda.device_count()
    first = netspec(["train", SPEC, *TINY, "--device", "cuda:0", "--out", str(ctx["work"] / "runs")])
    beyond = netspec(["train", SPEC, *TINY, "--device", f"cuda:{count}", "--out", str(ctx["work"] / "runs")])
    lines = beyond.stderr.strip().splitlines()
    return {"passed": first.returncode == 0 and beyond.returncode == 2 and len(lines) == 1, "visible": count,
            "cuda:0": outcome(first)["rc"], f"cuda:{count}": outcome(beyond)}


@cuda_only
def check_torchrun(ctx: dict) -> dict:
    procs = 2 if torch.cuda.device_count() >= 2 else 1
    out = ["--out", str(ctx["work"] / "runs"), "--device", "cuda"]
    plain = netspec(["train", SPEC, *TINY, *out], torchrun=procs)
    sync = netspec(["train", SPEC, *TINY, *out, "--sync-bn"], torchrun=procs)
    refused = "this run is one process" in sync.stderr
    # One process: WORLD_SIZE=1 is a single-process run (no process group, so NCCL is not exercised), and
    # --sync-bn is refused for it by design; with two, both must train.
    sync_ok = sync.returncode == 0 if procs > 1 else (sync.returncode != 0 and refused)
    return {"passed": plain.returncode == 0 and sync_ok, "nproc_per_node": procs,
            "nccl_exercised": procs > 1, "plain": outcome(plain), "sync_bn": outcome(sync),
            "sync_bn_refused_for_one_process": refused}


@cuda_only
def check_resume_cpu_cuda(ctx: dict) -> dict:
    cpu = netspec(["train", SPEC, *TINY, "--device", "cpu", "--out", str(ctx["work"] / "runs")])
    if cpu.returncode:
        return {"passed": False, "cpu": outcome(cpu)}
    folder = run_folder(cpu)
    resumed = netspec(["train", "--resume", str(folder), "--epochs", "2", "--device", "cuda", "--no-progress"])
    epochs = [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()
              if json.loads(line).get("kind") == "epoch"]
    reseeded = "reseeded" in resumed.stderr + resumed.stdout
    return {"passed": resumed.returncode == 0 and epochs == [1, 2] and not reseeded, "epochs": epochs,
            "reseed_line": reseeded, "resumed": outcome(resumed)}


CHECKS = {"train_eval": check_train_eval, "cpu_load": check_cpu_load, "cudnn_benchmark": check_cudnn_benchmark,
          "device_index": check_device_index, "torchrun": check_torchrun, "resume_cpu_cuda": check_resume_cpu_cuda}


def run_checks(device: torch.device, work: Path, save=lambda partial: None) -> dict:
    """Every check in order, each recorded (and saved) as it ends; one failing check does not stop the rest."""
    ctx = {"device": str(device), "work": work}
    results = {}
    for name, check in CHECKS.items():
        start = time.perf_counter()
        try:
            results[name] = check(ctx)
        except Exception as err:
            results[name] = {"passed": False, "error": f"{type(err).__name__}: {str(err)[:500]}"}
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(f"check {name}: {results[name]}", file=sys.stderr, flush=True)
        save(results)
    return results
