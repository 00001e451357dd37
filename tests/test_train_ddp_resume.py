"""DDP runs stopped mid-epoch and resumed, and what each rank draws at random.  Two gloo processes on the CPU
started by torchrun (tests/ddp_resume_worker.py): one launch runs an uninterrupted run, a stopped one and its
resumption; the tests read what each rank recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SPEC = """netspec: 1
name: tiny_dropout
input: [1, 28, 28]
body:
  - conv: {out: 4, kernel: 5}
  - batchnorm
  - relu
  - maxpool: {kernel: 2, stride: 2}
  - flatten
  - dropout: {p: 0.5}
  - linear: {out: 10}
"""


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp-resume")
    (out / "tiny_dropout.yaml").write_text(SPEC)
    for phase in ("whole", "stop", "resume"):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   str(ROOT / "tests" / "ddp_resume_worker.py"), phase, str(out), str(out / "tiny_dropout.yaml")]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-3000:]
    return out


def read(out: Path, name: str, rank: int) -> dict:
    return json.loads((out / f"{name}{rank}.json").read_text())


def test_a_resumed_ddp_epoch_counts_its_loss_and_accuracy_over_all_ranks_as_an_uninterrupted_one(ranks):
    whole, resumed = read(ranks, "whole", 0)["history"], read(ranks, "resumed", 0)["history"]
    assert [r["epoch"] for r in resumed] == [1, 2] and all(r["examples"] == 192 for r in resumed)  # 64 validate
    for a, b in zip(whole, resumed):
        for key in ("loss", "train_acc", "val_loss", "val_acc", "examples"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (key, a, b)
    # the test set, once at the end on the kept (best validation) weights, evaluated by rank 0 alone
    test, again = read(ranks, "whole", 0)["test"], read(ranks, "resumed", 0)["test"]
    assert test["examples"] == 256 and again["epoch"] == test["epoch"]
    assert again["test_acc"] == pytest.approx(test["test_acc"], abs=1e-6)
    assert read(ranks, "whole", 1)["test"] is None


def test_ddp_ranks_draw_their_own_augmentation_and_dropout_and_resume_repeats_them(ranks):
    drawn = [read(ranks, "whole", rank)["drawn"] for rank in (0, 1)]
    for kind in ("augment", "dropout"):
        assert len(drawn[0][kind]) == 12 and not set(drawn[0][kind]) & set(drawn[1][kind]), kind
    for rank in (0, 1):   # the stopped run drew steps 1-3 (before a stop), the resumed one steps 4-12
        stopped_then_resumed = read(ranks, "resumed", rank)["drawn"]
        assert stopped_then_resumed["dropout"] == drawn[rank]["dropout"][3:]
        assert stopped_then_resumed["augment"] == drawn[rank]["augment"][3:]
        whole = torch.load(ranks / f"whole{rank}.pt", weights_only=True)
        resumed = torch.load(ranks / f"resumed{rank}.pt", weights_only=True)
        assert all(torch.allclose(whole[k].float(), resumed[k].float(), atol=1e-6) for k in whole), rank
