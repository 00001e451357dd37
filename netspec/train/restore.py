"""What a resume puts back from `last.pt`: the weights, the optimizer, and every random state (the torch RNG,
CUDA's, the augmentation generator, and under DDP each rank's own), with a one-line error for any that does not
fit instead of torch's exception."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import torch

from netspec.train import checkpoint, loop


def restore(setup: loop.Setup, saved: Mapping, path: Path) -> None:
    checkpoint.load_into(setup.model, saved["model"], "the checkpoint")
    try:
        setup.optimizer.load_state_dict(saved["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
        raise checkpoint.CheckpointError(f"{path}: not a valid netspec checkpoint: its optimizer state does not "
                                         f"fit this network ({err})") from None
    set_rng_state(torch.set_rng_state, saved["rng"]["torch"], path)
    if saved["rng"].get("cuda") is not None and setup.device.type == "cuda":
        set_rng_state(lambda state: torch.cuda.set_rng_state(state, setup.device), saved["rng"]["cuda"], path)


def restore_aug_generator(gen: torch.Generator, rng: Mapping, setup: loop.Setup, state: loop.LoopState,
                          path: Path) -> str | None:
    """Restores the augmentation generator saved mid-epoch.  A state saved on another kind of device does not
    fit this one (a CUDA generator's state is 16 bytes, a CPU one's 5,056): the generator is then reseeded from
    (seed, epoch, step) and the returned line says so.  At an epoch's start the loop reseeds it anyway."""
    saved_on = rng.get("aug_device")
    if state.step_in_epoch == 0:
        return None
    if saved_on in (None, gen.device.type):
        try:
            gen.set_state(rng["aug"])
            return None
        except (RuntimeError, ValueError, TypeError) as err:
            if saved_on is not None:
                raise checkpoint.CheckpointError(f"{path}: not a valid netspec checkpoint: a generator state "
                                                 f"does not load ({err})") from None
    gen.manual_seed(loop.seed_for(loop.seed_for(setup.recipe.seed, state.epoch, 2), state.step_in_epoch, 3))
    return (f"{path.name}'s augmentation generator was saved on {saved_on or 'another device'}, not "
            f"{gen.device.type}: reseeded from the seed, epoch and step, so the rest of epoch {state.epoch + 1} "
            f"augments differently from the uninterrupted run")


def restore_rank(setup: loop.Setup, rng: Mapping, gen: torch.Generator, state: loop.LoopState, path: Path) -> None:
    """Under DDP, this rank's own generators: saved per rank (`rng.ranks`) by a run of the same world size;
    otherwise (a checkpoint from another world size or one process) ranks other than 0 reseed from (seed, rank,
    step), so they still draw differently from rank 0, though not as the uninterrupted run would have."""
    info = setup.dist
    if not info.enabled:
        return
    ranks = rng.get("ranks")
    if isinstance(ranks, list) and len(ranks) == info.world:
        mine = ranks[info.rank]
        if not isinstance(mine, dict) or not all(isinstance(mine.get(k), torch.Tensor) for k in ("torch", "aug")):
            raise checkpoint.CheckpointError(f"{path}: not a valid netspec checkpoint: `rng.ranks` must hold each "
                                             f"rank's generator states")
        set_rng_state(torch.set_rng_state, mine["torch"], path)
        set_rng_state(gen.set_state, mine["aug"], path)
        if isinstance(mine.get("cuda"), torch.Tensor) and setup.device.type == "cuda":
            set_rng_state(lambda s: torch.cuda.set_rng_state(s, setup.device), mine["cuda"], path)
    elif info.rank:
        torch.manual_seed(loop.seed_for(setup.recipe.seed, state.global_step, loop.rank_salt(3, info.rank)))
        gen.manual_seed(loop.seed_for(setup.recipe.seed, state.global_step, loop.rank_salt(4, info.rank)))


def set_rng_state(setter: Callable[[torch.Tensor], object], state: torch.Tensor, path: Path) -> None:
    try:
        setter(state)
    except (RuntimeError, ValueError, TypeError) as err:
        raise checkpoint.CheckpointError(f"{path}: not a valid netspec checkpoint: a generator state does not "
                                         f"load ({err})") from None
