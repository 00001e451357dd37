"""Scale-out on torch.distributed: `torchrun --nproc_per_node=N -m netspec train …` runs DDP.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and the rendezvous for multi-node); without them a run is a
single process and nothing here talks to anyone.  NCCL on CUDA, gloo on CPU.  Every rank holds the whole data
set and takes its own shard of each epoch's permutation; metrics are summed over ranks; only rank 0 writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> Dist:
    """The process group torchrun describes, or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(choice: str, info: Dist) -> torch.device:
    """`auto` means CUDA when present; under DDP each rank takes the GPU of its local rank (netspec.train.devices)."""
    from netspec.train.devices import pick

    return pick(choice, info)


def init(info: Dist, device: torch.device) -> None:
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world, **kwargs)


def shutdown(info: Dist, together: bool) -> None:
    """Leaves the process group.  `together` (every rank got here the same way: the run finished, or all ranks
    agreed to stop) waits for the others first: a rank that tears gloo down while a peer is still busy (rank 0
    writes the checkpoints after the last collective) can die in gloo's destructor with SIGABRT ("terminate
    called without an active exception"), about one run in ten on two CPU cores.  After an error on one rank
    alone, waiting would hang; torchrun stops the rest."""
    if info.enabled and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, info: Dist, device: torch.device) -> torch.nn.Module:
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_batchnorm(model: torch.nn.Module, info: Dist, device: torch.device) -> torch.nn.Module:
    """`--sync-bn`: every nn.BatchNorm computes its batch statistics over all ranks (torch.nn.SyncBatchNorm).
    Refused in one line where it cannot work: one process (nothing to synchronise), the CPU (torch's
    SyncBatchNorm runs on GPUs only), and BatchNorm written from the formulas (`impl: formula`, plain tensor ops
    that convert_sync_batchnorm cannot convert)."""
    from netspec.train.recipe import RecipeError

    if not info.enabled:
        raise RecipeError("--sync-bn synchronises BatchNorm over DDP processes; this run is one process (start it "
                          "with torchrun --nproc_per_node=N)")
    if device.type != "cuda":
        raise RecipeError(f"--sync-bn needs CUDA devices: torch's SyncBatchNorm does not run on {device.type}")
    if any(type(m).__name__ == "FormulaBatchNorm" for m in model.modules()):
        raise RecipeError("--sync-bn converts nn.BatchNorm layers only; this network has batchnorm `impl: formula`, "
                          "which cannot be synchronised (use impl: torch)")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def sum_(values: torch.Tensor, info: Dist) -> torch.Tensor:
    """Element-wise sum over ranks (in place; returned for chaining)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def max_(values: torch.Tensor, info: Dist) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def sync_buffers(model: torch.nn.Module, info: Dist) -> None:
    """Copies rank 0's buffers (BatchNorm running statistics) to every rank, so all ranks evaluate and save the
    same network: DDP averages gradients, but each rank updates its own running statistics."""
    if info.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def gather(value: object, info: Dist) -> list | None:
    """Every rank's `value` (small and picklable: generator states), in rank order; None in a single process."""
    if not info.enabled:
        return None
    values: list = [None] * info.world
    dist.all_gather_object(values, value)
    return values


def shard(indices: torch.Tensor, info: Dist) -> torch.Tensor:
    """This rank's share of an epoch's permutation: every world-th index from its rank on, after dropping the
    tail that would give ranks unequal counts (so every rank runs the same number of steps)."""
    if not info.enabled:
        return indices
    usable = len(indices) - len(indices) % info.world
    return indices[:usable][info.rank::info.world]
