"""One rank of tests/test_train_ddp_resume.py, started by torchrun for one phase (a process group cannot be set up
twice in one torchrun launch): `whole` (an uninterrupted run), `stop` (the same run stopped mid-epoch), `resume`
(that run resumed).  Each rank records its final weights and what its augmentation and dropout drew."""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from netspec.train import loop, run
from netspec.train.recipe import RunOptions

from stopping import StopAfter

phase, out, spec = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
rank = int(os.environ["RANK"])
RECIPE = {"data": "synthetic", "epochs": 2, "batch_size": 32, "optimizer": "momentum", "lr": 0.05,
          "augment": "flip,crop", "seed": 5, "val_split": 0.25}
drawn: dict[str, list[str]] = {"augment": [], "dropout": []}


def digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().cpu().numpy().tobytes()).hexdigest()[:16]


augment, dropout = loop.augment, nn.Dropout.forward


def recorded_augment(images, which, gen):
    drawn["augment"].append(digest(gen.get_state()))      # the generator's state decides what it draws
    return augment(images, which, gen)


def recorded_dropout(self, x):
    if self.training:
        drawn["dropout"].append(digest(torch.get_rng_state()))   # the global generator draws the mask
    return dropout(self, x)


loop.augment, nn.Dropout.forward = recorded_augment, recorded_dropout


def options(name: str) -> RunOptions:
    return RunOptions(device="cpu", subset=256, out=str(out / name), download=False, log_every=1, threads=1)


def save(name: str, result) -> None:
    torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()}, out / f"{name}{rank}.pt")
    (out / f"{name}{rank}.json").write_text(json.dumps({"history": list(result.history), "test": result.test,
                                                        "drawn": drawn}))


if phase == "whole":
    save("whole", run.start(spec, RECIPE, options("whole")))
elif phase == "stop":
    try:
        run.start(spec, RECIPE, options("stopped"), StopAfter(3))   # rank 0's request stops both ranks at step 3
        raise SystemExit("the run did not stop")
    except loop.Stopped:
        pass
else:
    (folder,) = (out / "stopped").iterdir()
    save("resumed", run.resume(folder, options("stopped"), None))
