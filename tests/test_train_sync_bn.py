"""`--sync-bn`: nn.BatchNorm → SyncBatchNorm under DDP on CUDA, refused in one line elsewhere.  torch's SyncBatchNorm
does not run on the CPU (its forward raises), so without a GPU these tests check the conversion and the flag's
plumbing, not statistics synchronised over gloo."""

from __future__ import annotations

import pytest
import torch

from netspec import pipeline
from netspec.backends.fx import to_graph_module
from netspec.cli import main
from netspec.train import distributed
from netspec.train.distributed import Dist
from netspec.train.recipe import RecipeError, RunOptions

CUDA = torch.device("cuda", 0)   # a value only: conversion touches no device


def model(bn_impl: str = "torch") -> torch.nn.Module:
    return to_graph_module(pipeline.shaped_network("bn_lenet", {"bn_impl": bn_impl}))


def test_sync_bn_converts_every_batchnorm_under_ddp_on_cuda():
    converted = distributed.sync_batchnorm(model(), Dist(rank=1, world=2), CUDA)
    kinds = [type(m) for m in converted.modules()]
    assert kinds.count(torch.nn.SyncBatchNorm) == 4
    assert not any(k in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d) for k in kinds)


@pytest.mark.parametrize("bn_impl, info, device, says", [
    ("torch", Dist(), CUDA, "this run is one process"),
    ("torch", Dist(rank=0, world=2), torch.device("cpu"), "does not run on cpu"),
    ("formula", Dist(rank=0, world=2), CUDA, "impl: formula"),
], ids=["one-process", "cpu", "formula"])
def test_sync_bn_is_refused_in_one_line_where_it_cannot_work(bn_impl, info, device, says):
    with pytest.raises(RecipeError, match=says) as err:
        distributed.sync_batchnorm(model(bn_impl), info, device)
    assert "\n" not in str(err.value)


def test_the_sync_bn_flag_reaches_the_run_and_is_recorded_in_its_options(tmp_path, capsys):
    assert RunOptions(sync_bn=True).to_json()["sync_bn"] is True
    code = main(["train", "bn_lenet", "--data", "synthetic", "--subset", "64", "--epochs", "1", "--sync-bn",
                 "--device", "cpu", "--no-progress", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "--sync-bn synchronises BatchNorm over DDP processes" in err and "Traceback" not in err
