"""One rank of the DDP test (tests/test_train_ddp.py), started by torchrun: trains, then saves its own weights."""

import os
import sys
from pathlib import Path

import torch

from netspec.train import run
from netspec.train.recipe import RunOptions

out = Path(sys.argv[1])
recipe = {"data": "synthetic", "epochs": 2, "batch_size": 64, "optimizer": "momentum", "lr": 0.05,
          "augment": "flip"}
result = run.start("bn_lenet", recipe, RunOptions(device="cpu", subset=256, out=str(out / "runs"), download=False,
                                                  log_every=2, threads=1))
torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()},
           out / f"rank{os.environ['RANK']}.pt")
