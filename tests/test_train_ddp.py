"""DistributedDataParallel on CPU: two gloo processes started by torchrun, as a user would start them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def torchrun(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_cpu_processes_end_with_identical_weights_and_write_one_metrics_file(tmp_path):
    done = torchrun(str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "the ranks' weights (or BN statistics) differ"
    (folder,) = (tmp_path / "runs").iterdir()           # rank 1 wrote nothing
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(r["examples"] == 256 for r in epochs)      # both shards counted: the metrics are all-reduced
    assert json.loads((folder / "run.json").read_text())["world_size"] == 2
    saved = torch.load(folder / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)


def test_torchrun_runs_the_netspec_cli_itself(tmp_path):
    done = torchrun("-m", "netspec", "train", "lenet", "--data", "synthetic", "--subset", "128", "--epochs", "1",
                    "--batch-size", "32", "--out", str(tmp_path), "--no-progress", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on cpu ×2" in done.stdout and done.stdout.count("epoch 1/1") == 1   # rank 0 alone reports
    assert len(list(tmp_path.iterdir())) == 1


BLOCKS = """netspec: 1
name: tiny_blocks
input: [1, 28, 28]
body:
  - name: features
    seq:
      - conv: {out: 4, kernel: 5}
      - batchnorm
      - relu
      - maxpool: {kernel: 2, stride: 2}
  - name: head
    seq:
      - flatten
      - linear: {out: 10}
"""


@pytest.mark.slow   # inductor compiles C++ for each rank: about 20 s on two cores
def test_compile_under_ddp_trains_nested_blocks_with_in_place_relu_and_batchnorm(tmp_path):
    (tmp_path / "tiny_blocks.yaml").write_text(BLOCKS)
    done = torchrun(str(ROOT / "tests" / "ddp_compile_worker.py"), str(tmp_path), str(tmp_path / "tiny_blocks.yaml"),
                    timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "the ranks' weights (or BN statistics) differ"
    assert all(torch.isfinite(v.float()).all() for v in rank0.values())
    assert not torch.equal(rank0["features.1.running_mean"], torch.zeros(4)), "BatchNorm statistics never moved"
    assert int(rank0["features.1.num_batches_tracked"]) == 4 * 2     # 4 steps an epoch, 2 epochs
    (folder,) = (tmp_path / "runs").iterdir()
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["examples"] for r in records if r["kind"] == "epoch"] == [128, 128]
    saved = torch.load(folder / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)
