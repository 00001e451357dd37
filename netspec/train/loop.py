"""The training loop: flat, on whole-tensor data, the same code on CPU and CUDA, one process or many.

    for each epoch: permutation (seeded by seed and epoch) → this rank's shard → batches of indices
        for each batch: gather → augment → float/resize → forward (autocast) → loss → backward → step
        every few steps: look for a non-finite loss and a stop request (one collective under DDP)
    then: metrics summed over ranks, BatchNorm statistics from rank 0, validation (when there is a validation
          set), the test set (after the last epoch without validation, or every epoch when asked), hooks.epoch_end
    until the last epoch, or `patience` epochs without a better validation accuracy (early stopping)

"Best" is the epoch with the highest validation accuracy; without a validation set it is the last epoch (the
test set is never used to choose).

Everything random is a function of the seed and the position (epoch, step), or is saved in the checkpoint (the
global RNG for dropout, the augmentation generator mid-epoch), so a resumed run repeats the uninterrupted one.
Under DDP each rank draws its own augmentation and dropout (the rank is folded into their seeds; rank 0 draws as
one process does), and the checkpoint holds every rank's generators.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from netspec.train import distributed
from netspec.train.data import DataSet, augment, to_input
from netspec.train.distributed import Dist
from netspec.train.losses import classification_loss, main_output
from netspec.train.recipe import Recipe

ONECYCLE_WARMUP = 0.25     # fraction of the run spent rising to the peak lr (no warmup_epochs given)
ONECYCLE_START = 1 / 25    # start at lr/25, as torch's OneCycleLR


class NonFiniteLoss(Exception):
    def __init__(self, step: int, epoch: int, batch: int):
        super().__init__(f"the loss became NaN or infinite at step {step} (epoch {epoch}, batch {batch})")
        self.step, self.epoch, self.batch = step, epoch, batch


class Stopped(Exception):
    """A stop was requested (Ctrl-C); the hooks have saved a checkpoint at the current step."""


@dataclass(frozen=True)
class Setup:
    """What the loop runs on; fixed for the whole run."""

    model: nn.Module          # the plain network: state_dict, evaluation
    forward: nn.Module        # what training steps call: the model, maybe DDP-wrapped and/or compiled
    optimizer: torch.optim.Optimizer
    data: DataSet             # already on `device`
    recipe: Recipe
    device: torch.device
    size: tuple[int, int]
    channels_last: bool = False
    amp: bool = False
    dist: Dist = Dist()
    sync_every: int = 1       # steps between checks for NaN and stop requests
    log_every: int = 50
    test_every_epoch: bool = False   # else the test set is evaluated after the last epoch only


@dataclass
class LoopState:
    """Where the run is: mutable on purpose (the loop advances it), saved whole in every checkpoint."""

    epoch: int = 0            # epochs completed
    step_in_epoch: int = 0    # batches done in the current epoch
    global_step: int = 0
    loss_sum: float = 0.0     # this epoch so far (this rank; all ranks in a checkpoint)
    correct: float = 0.0
    count: int = 0
    examples: int = 0         # all epochs, all ranks (for examples/s)
    train_time: float = 0.0   # seconds in training steps, all epochs (evaluation excluded, as the course)
    epoch_time: float = 0.0   # seconds in training steps in the current epoch (its throughput)
    logged_loss: float = 0.0  # the epoch's loss sum and count at the last `step` log line (its interval mean)
    logged_count: int = 0
    history: list = field(default_factory=list)
    best_acc: float = -1.0    # the best epoch's validation accuracy (-1: none yet, or no validation set)
    best_epoch: int = 0

    def to_json(self) -> dict:
        return dict(vars(self))


def resumed(saved: dict, info: Dist) -> LoopState:
    """The state a checkpoint holds, as rank `info.rank` resumes it.  A mid-epoch checkpoint holds the epoch's sums
    over all ranks (summed at the stop): rank 0 starts from them, the others from zero, so the epoch-end sum over
    ranks counts every example once."""
    state = LoopState(**saved)
    if not info.is_main:
        state.loss_sum, state.correct, state.count = 0.0, 0.0, 0
        state.logged_loss, state.logged_count = 0.0, 0
    return state


class Hooks:
    """What the loop tells the outside; the default does nothing (tests, non-zero ranks)."""

    def epoch_start(self, epoch: int, steps: int, done: int) -> None: ...

    def progress(self, steps: int, loss: float, acc: float, examples_per_s: float) -> None: ...

    def log(self, record: dict) -> None: ...

    def epoch_end(self, record: dict, state: LoopState, best: bool) -> None: ...

    def stop(self, state: LoopState) -> None: ...

    def rank_states(self, states: list | None) -> None:
        """Every rank's generator states (`rng_states`), before `stop` and `epoch_end` save; None in one process."""

    def stop_requested(self) -> bool:
        return False


def lr_at(recipe: Recipe, step: int, total: int, steps_per_epoch: int) -> float:
    """The learning rate of `step` (0-based) in a run of `total` steps: a pure function, so resuming needs no
    scheduler state."""
    if recipe.schedule == "constant" or total <= 0:
        return recipe.lr
    warm = recipe.warmup_epochs * steps_per_epoch
    if recipe.schedule == "onecycle":
        warm = warm or ONECYCLE_WARMUP * total
        if step < warm:
            return recipe.lr * (ONECYCLE_START + (1 - ONECYCLE_START) * step / warm)
    elif step < warm:
        return recipe.lr * (step + 1) / warm
    progress = (step - warm) / max(1.0, total - warm)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def seed_for(seed: int, epoch: int, salt: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + salt) % (2 ** 63)


def rank_salt(salt: int, rank: int) -> int:
    """`salt` for a rank's own generator: unchanged on rank 0 (a single process), distinct on the others."""
    return salt + rank * 104_729


def rng_states(setup: Setup, gen: torch.Generator) -> dict:
    """This process's generators: the global one (dropout), CUDA's, the augmentation generator."""
    cuda = torch.cuda.get_rng_state(setup.device) if setup.device.type == "cuda" else None
    return {"torch": torch.get_rng_state(), "cuda": cuda, "aug": gen.get_state()}


def epoch_batches(setup: Setup, epoch: int) -> list[torch.Tensor]:
    """This rank's batches of training indices for `epoch`: the same permutation on every rank, then sharded."""
    n = len(setup.data.train_y)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed_for(setup.recipe.seed, epoch, 1)))
    local = setup.recipe.batch_size // setup.dist.world
    return list(distributed.shard(order, setup.dist).to(setup.device).split(local))


def autocast(setup: Setup):
    if not setup.amp:
        return nullcontext()
    return torch.autocast(setup.device.type, dtype=torch.bfloat16)


def train_step(setup: Setup, idx: torch.Tensor, gen: torch.Generator, lr: float):
    images = setup.data.train_x[idx]                                          # (B, C, H, W) uint8
    if setup.recipe.augment:
        images = augment(images, setup.recipe.augment, gen)
    x, y = to_input(images, setup.size, setup.channels_last), setup.data.train_y[idx]
    for group in setup.optimizer.param_groups:
        group["lr"] = lr
    with autocast(setup):
        outputs = setup.forward(x)                                             # (B, classes), or aux heads too
    loss, logits, aux = classification_loss(outputs, y, setup.recipe.label_smoothing, setup.recipe.aux_weight)
    setup.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    setup.optimizer.step()
    return loss.detach(), (logits.argmax(1) == y).sum(), aux


def evaluate(setup: Setup, split: str = "test") -> tuple[float, float, int]:
    images, labels = getattr(setup.data, f"{split}_x"), getattr(setup.data, f"{split}_y")
    return evaluate_on(setup.model, images, labels, setup.size, setup.recipe.eval_batch_size, setup.channels_last,
                       setup.amp, setup.dist)


@torch.no_grad()
def evaluate_on(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, size: tuple[int, int], batch: int,
                channels_last: bool = False, amp: bool = False, info: Dist = Dist()) -> tuple[float, float, int]:
    """(mean loss, accuracy, examples) of `model` on uint8 `images` (on the model's device); under DDP each rank
    takes every world-th example and the sums are added over ranks."""
    was_training = model.training
    model.eval()
    device = images.device
    indices = torch.arange(info.rank, len(labels), info.world, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)                  # loss, correct, count
    sums[2] = len(indices)                                                      # no host→device copy per batch
    for idx in indices.split(batch):
        x, y = to_input(images[idx], size, channels_last), labels[idx]
        with torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext():
            logits = main_output(model(x)).float()
        sums[:2] += torch.stack([F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum()])
    loss, correct, count = distributed.sum_(sums, info).tolist()
    model.train(was_training)
    return loss / max(count, 1), correct / max(count, 1), int(count)


def run(setup: Setup, state: LoopState, gen: torch.Generator, hooks: Hooks) -> LoopState:
    """Trains from `state` to the recipe's last epoch; raises NonFiniteLoss or Stopped."""
    setup.forward.train()
    while state.epoch < setup.recipe.epochs and not stops_early(setup.recipe, state):
        run_epoch(setup, state, gen, hooks)
    return state


def stops_early(recipe: Recipe, state: LoopState) -> bool:
    """`patience` epochs have passed without a better validation accuracy (a function of the state, so a resumed
    run stops where the uninterrupted one did)."""
    return bool(recipe.patience) and state.best_epoch > 0 and state.epoch - state.best_epoch >= recipe.patience


def run_epoch(setup: Setup, state: LoopState, gen: torch.Generator, hooks: Hooks) -> None:
    batches = epoch_batches(setup, state.epoch)
    total = setup.recipe.epochs * len(batches)
    if state.step_in_epoch == 0:  # a fresh epoch; mid-epoch, the generator comes from the checkpoint
        gen.manual_seed(seed_for(setup.recipe.seed, state.epoch, rank_salt(2, setup.dist.rank)))
        state.loss_sum, state.correct, state.count = 0.0, 0.0, 0
        state.logged_loss, state.logged_count, state.epoch_time = 0.0, 0, 0.0
    hooks.epoch_start(state.epoch, len(batches), state.step_in_epoch)
    sums = torch.tensor([state.loss_sum, state.correct], dtype=torch.float64, device=setup.device)
    aux_sums: dict[str, torch.Tensor] = {}    # auxiliary heads' losses, summed over this process's examples
    finite: list[torch.Tensor] = []
    start = time.perf_counter()
    first = state.step_in_epoch
    for k in range(first, len(batches)):
        idx = batches[k]
        loss, correct, aux = train_step(setup, idx, gen, lr_at(setup.recipe, state.global_step, total, len(batches)))
        sums += torch.stack([loss * len(idx), correct]).double()
        for name, value in aux.items():
            aux_sums[name] = aux_sums.get(name, 0) + value.double() * len(idx)
        finite.append(torch.isfinite(loss))
        state.global_step, state.step_in_epoch, state.count = state.global_step + 1, k + 1, state.count + len(idx)
        if k + 1 == len(batches) or state.global_step % setup.sync_every == 0 \
                or state.global_step % setup.log_every == 0:
            start = _sync_point(setup, state, sums, finite, start, hooks, gen)
            finite = []
    _finish_epoch(setup, state, sums, start, hooks, gen, aux_sums, sum(len(b) for b in batches[first:]))


def _sync_point(setup: Setup, state: LoopState, sums: torch.Tensor, finite: list, start: float,
                hooks: Hooks, gen: torch.Generator) -> float:
    """Checks the steps since the last sync point for non-finite losses and for a stop request (agreed by all
    ranks), updates the progress bar and the step log.  Returns the new start of the timed interval."""
    if setup.device.type == "cuda":
        torch.cuda.synchronize(setup.device)
    now = time.perf_counter()
    state.train_time += now - start
    state.epoch_time += now - start
    ok = torch.stack(finite)
    first_bad = int((~ok).nonzero()[0]) if not bool(ok.all()) else -1
    bad_step = state.global_step - len(finite) + first_bad + 1 if first_bad >= 0 else 0
    flags = torch.tensor([int(hooks.stop_requested()), bad_step], dtype=torch.int64, device=setup.device)
    stop, bad_step = distributed.max_(flags, setup.dist).tolist()
    state.loss_sum, state.correct = sums.tolist()
    if bad_step:
        steps_per_epoch = len(epoch_batches(setup, state.epoch))
        raise NonFiniteLoss(bad_step, state.epoch + 1, bad_step - state.epoch * steps_per_epoch)
    seen = max(state.count, 1)
    rate = state.count * setup.dist.world / max(state.epoch_time, 1e-9)     # this epoch's, not a running average
    hooks.progress(state.step_in_epoch, state.loss_sum / seen, state.correct / seen, rate)
    if state.global_step % setup.log_every == 0:
        interval = max(state.count - state.logged_count, 1)
        hooks.log({"kind": "step", "epoch": state.epoch + 1, "step": state.global_step,
                   "loss": state.loss_sum / seen, "train_acc": state.correct / seen,
                   "step_loss": (state.loss_sum - state.logged_loss) / interval,
                   "lr": setup.optimizer.param_groups[0]["lr"], "examples_per_s": rate})
        state.logged_loss, state.logged_count = state.loss_sum, state.count
    if stop:
        # The epoch's sums so far, over all ranks: rank 0 saves them, and on resume carries them on alone
        # (`resumed`), so that the resumed epoch's totals equal an uninterrupted run's.
        totals = torch.tensor([state.loss_sum, state.correct, state.count], dtype=torch.float64, device=setup.device)
        loss_sum, correct, count = distributed.sum_(totals, setup.dist).tolist()
        state.loss_sum, state.correct, state.count = loss_sum, correct, int(count)
        if setup.dist.enabled:   # the sums are now every rank's: the next interval starts from them
            state.logged_loss, state.logged_count = loss_sum, int(count)
        hooks.rank_states(distributed.gather(rng_states(setup, gen), setup.dist))
        hooks.stop(state)
        raise Stopped()
    return time.perf_counter()


def _finish_epoch(setup: Setup, state: LoopState, sums: torch.Tensor, start: float, hooks: Hooks,
                  gen: torch.Generator, aux_sums: dict | None = None, examples: int = 0) -> None:
    if setup.device.type == "cuda":
        torch.cuda.synchronize(setup.device)
    elapsed = time.perf_counter() - start
    state.train_time += elapsed
    state.epoch_time += elapsed
    counts = torch.tensor([*sums.tolist(), state.count], dtype=torch.float64, device=setup.device)
    loss_sum, correct, count = distributed.sum_(counts, setup.dist).tolist()
    state.examples += int(count)
    distributed.sync_buffers(setup.model, setup.dist)
    record = {"kind": "epoch", "epoch": state.epoch + 1, "step": state.global_step, "loss": loss_sum / max(count, 1),
              "train_acc": correct / max(count, 1)}
    if setup.data.has_val:
        record["val_loss"], record["val_acc"], _ = evaluate(setup, "val")
    last = state.epoch + 1 == setup.recipe.epochs
    if setup.data.has_test and (setup.test_every_epoch or (last and not setup.data.has_val)):
        record["test_loss"], record["test_acc"], _ = evaluate(setup, "test")
    record.update({"lr": setup.optimizer.param_groups[0]["lr"], "examples": int(count),
                   "examples_per_s": count / max(state.epoch_time, 1e-9), "train_time": state.train_time})
    state.epoch, state.step_in_epoch = state.epoch + 1, 0
    state.loss_sum, state.correct, state.count = 0.0, 0.0, 0
    state.logged_loss, state.logged_count, state.epoch_time = 0.0, 0, 0.0
    if aux_sums:  # the mean over the examples of the steps this run made in the epoch (all of them unless resumed)
        names = list(aux_sums)
        totals = torch.stack([aux_sums[name] for name in names] + [torch.tensor(
            float(examples), dtype=torch.float64, device=setup.device)])
        *aux, seen = distributed.sum_(totals, setup.dist).tolist()
        record["aux_loss"] = {name: value / max(seen, 1) for name, value in zip(names, aux)}
    state.history.append(record)
    # Chosen on validation; without a validation set the last epoch is kept (never chosen on the test set).
    best = record["val_acc"] > state.best_acc if setup.data.has_val else True
    if best:
        state.best_acc, state.best_epoch = record.get("val_acc", -1.0), state.epoch
    hooks.rank_states(distributed.gather(rng_states(setup, gen), setup.dist))
    hooks.epoch_end(record, state, best)
