"""One rank of the DDP `--compile` test (tests/test_train_ddp.py), started by torchrun: trains a network of nested
blocks (in-place ReLU, BatchNorm buffers) compiled over its DDP wrapper, then saves its own weights."""

import os
import sys
from pathlib import Path

import torch

from netspec.train import run
from netspec.train.recipe import RunOptions

out, spec = Path(sys.argv[1]), sys.argv[2]
recipe = {"data": "synthetic", "epochs": 2, "batch_size": 32, "optimizer": "momentum", "lr": 0.05, "augment": "flip"}
result = run.start(spec, recipe, RunOptions(device="cpu", subset=128, out=str(out / "runs"), download=False,
                                            threads=1, compile=True))
torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()},
           out / f"rank{os.environ['RANK']}.pt")
