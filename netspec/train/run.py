"""A training run from start to end: spec → model, data, optimizer → loop → run directory.

`start` begins a run, `resume` continues one from its `last.pt`.  Both return a `Result`; failures are
exceptions the CLI turns into messages (RecipeError/DataError: the user's to fix; NonFiniteLoss; Stopped).
Only rank 0 touches the run directory.
"""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from netspec import __version__
from netspec.backends.compat import Compat, render
from netspec.ir import ShapedNetwork
from netspec.train import checkpoint, devices, distributed, files, loop, rundir
from netspec.train.restore import restore, restore_aug_generator, restore_rank
from netspec.train.data import DataSet, load_dataset
from netspec.train.datasets import DataError
from netspec.train.distributed import Dist
from netspec.train.recipe import PYTHON_DATA, Recipe, RecipeError, RunOptions, check, from_json, resolve
from netspec.train.rundir import SpecFiles


@dataclass(frozen=True)
class Result:
    run_dir: Path | None
    history: tuple[dict, ...]
    best_acc: float                   # the kept epoch's validation accuracy (-1 without a validation set)
    best_epoch: int                   # the kept epoch: best on validation, else the last
    examples_per_s: float
    device: str
    model: nn.Module | None = None    # the trained network (on its device) with the kept weights
    test: dict | None = None          # {"test_loss", "test_acc", "epoch", …}: the kept weights on the test set
    stopped_early: bool = False       # `patience` ended the run before its last epoch


class UI:
    """What a person sees; the CLI's subclass draws the bar and prints.  Called on rank 0 only."""

    def message(self, text: str) -> None: ...

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None: ...

    def progress(self, steps: int, loss: float, acc: float, examples_per_s: float) -> None: ...

    def epoch_end(self, record: dict, epochs: int, device: str) -> None: ...

    def stop_requested(self) -> bool:
        return False


@dataclass(frozen=True)
class Prepared:
    """Everything built for a run, before the loop starts."""

    setup: loop.Setup
    spec_files: SpecFiles
    shaped: ShapedNetwork
    options: RunOptions
    init_report: Compat | None = None     # what --init-from loaded


# ── building ──────────────────────────────────────────────────────────────────────────────────────────────────

def prepare(shaped: ShapedNetwork, spec_files: SpecFiles, recipe: Recipe, options: RunOptions,
            info: Dist, given: DataSet | None = None) -> Prepared:
    """`given`: data handed over from Python (netspec.train(train_data=…)), else the recipe's data set."""
    shape = tuple(shaped.network.input_shape)
    size = input_size(shape, recipe)
    device = distributed.pick_device(options.device, info)
    distributed.init(info, device)
    if options.threads and device.type == "cpu":
        torch.set_num_threads(options.threads)
    data = checked_data(recipe, options, shape, tuple(shaped.output_shape), given).to(device)
    model = build_model(shaped, recipe, options, device)
    init_report = init_weights(model, options.init_from) if options.init_from else None
    if info.rank:  # each rank its own dropout draws (DDP gives every rank rank 0's initial weights)
        torch.manual_seed(loop.seed_for(recipe.seed, 0, loop.rank_salt(3, info.rank)))
    amp = recipe.amp if recipe.amp is not None else devices.default_amp(device)
    torch.backends.cudnn.benchmark = devices.cudnn_benchmark(device)
    channels_last = device.type == "cuda" or (amp and device.type == "cpu")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if options.sync_bn:
        model = distributed.sync_batchnorm(model, info, device)
    forward = distributed.wrap(model, info, device)
    if options.compile:
        # Static shapes: the epoch's short last batch otherwise turns the batch size dynamic for the rest of the
        # run, and the dynamic kernels were slower; each distinct batch size compiles once instead.
        forward = torch.compile(forward, dynamic=False)
    if recipe.batch_size % info.world:
        raise RecipeError(f"batch size {recipe.batch_size} does not split over {info.world} processes")
    setup = loop.Setup(model, forward, make_optimizer(model, recipe), data, recipe, device, size, channels_last,
                       amp, info, sync_every=sync_every(device, info), log_every=options.log_every,
                       test_every_epoch=options.test_every_epoch)
    return Prepared(setup, spec_files, shaped, options, init_report)


def input_size(shape: tuple, recipe: Recipe) -> tuple[int, int]:
    if len(shape) != 3:
        raise RecipeError(f"train needs an image network with input [C, H, W]; this one takes {list(shape)}")
    height, width = shape[1], shape[2]
    if recipe.resize is not None and (recipe.resize, recipe.resize) != (height, width):
        raise RecipeError(f"resize {recipe.resize} does not match the network's input {height}×{width}; the "
                          f"spec's input size must change with it (e.g. `--set size={recipe.resize}` if the spec "
                          f"has a `size` param), or drop --resize")
    return height, width


def checked_data(recipe: Recipe, options: RunOptions, shape: tuple, output: tuple,
                 given: DataSet | None = None) -> DataSet:
    data = given if given is not None else load_dataset(recipe.data, shape, options.data_dir, options.download)
    data = data.subset(options.subset)
    try:
        data = data.split_val(recipe.val_split)
    except DataError as err:  # the fraction does not fit the data (or the --subset) the user chose: a usage error
        raise RecipeError(str(err)) from None
    if recipe.patience and not data.has_val:
        raise RecipeError("patience stops on the validation accuracy; this run has no validation set (add "
                          "--val-split FRACTION)")
    channels = data.image_shape[0]
    if channels != shape[0]:
        raise RecipeError(f"{data.name} images have {channels} channel(s) but the network takes {shape[0]}; "
                          f"change the spec's input channels (e.g. `--set in_channels={channels}`)")
    if len(output) != 1:
        raise RecipeError(f"train fits image classifiers: the network must output [classes], but this one outputs "
                          f"{list(output)} (one value per pixel, or per position, has no label in {data.name})")
    if output[0] != len(data.classes):  # more outputs than classes trained silently on classes that never occur
        fix = (f"`netspec.train(spec, …, params={{'num_classes': {len(data.classes)}}})`"
               if data.name == PYTHON_DATA else f"`--set num_classes={len(data.classes)}`")
        what = "the data given from Python" if data.name == PYTHON_DATA else data.name
        raise RecipeError(f"{what} has {len(data.classes)} classes but the network outputs {list(output)}; "
                          f"they must be equal, e.g. {fix}")
    return data


def build_model(shaped: ShapedNetwork, recipe: Recipe, options: RunOptions, device: torch.device) -> nn.Module:
    """The network, initialized from the seed alone (so every rank and every resume builds the same one)."""
    from netspec.backends.fx import to_graph_module

    torch.manual_seed(recipe.seed)
    model = to_graph_module(shaped, options.max_params)
    if recipe.init == "xavier":  # the course: xavier_uniform_ on every conv and linear weight, biases as PyTorch
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
    return model.to(device)


def init_weights(model: nn.Module, ref: str) -> Compat:
    """`--init-from`: loads every tensor of the weights at `ref` whose name and shape match the network's (what
    `netspec compat` reports), so an edited network starts from what it shares with the old one; the rest keep
    their initialization.  Weights of which nothing fits are refused: they are surely not the ones meant."""
    from netspec.backends.compat import headline
    from netspec.backends.weights import load_matching

    state = checkpoint.load_weights(weights_path(ref))
    report = load_matching(model, state)
    if not report.loaded and report.target_count:
        raise checkpoint.CheckpointError(f"{ref}: none of its tensors fits this network ({headline(report)}); "
                                         f"`netspec compat {ref} SPEC` shows why")
    return report


def weights_path(ref: str) -> Path:
    """A weights file, or a run folder's exported or best weights."""
    return checkpoint.file_of(ref, ("model.safetensors", "best.pt", "last.pt"))


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    # Weight decay applies to weights only: decaying BatchNorm scales and biases only hurts (and the course's
    # recipes use none at all).
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    momentum = recipe.momentum if recipe.optimizer == "momentum" else 0.0
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=momentum, nesterov=momentum > 0)


def sync_every(device: torch.device, info: Dist) -> int:
    """Steps between checks: every step on one CPU (free), less often where a check costs a sync."""
    if info.enabled:
        return 10
    return 25 if device.type == "cuda" else 1


# ── running ───────────────────────────────────────────────────────────────────────────────────────────────────

DEFAULT_LOG_EVERY = 50   # steps between `step` lines in metrics.jsonl
# curves.png is redrawn after an epoch only while drawing has taken at most this share of the run's time (a
# three-panel figure takes 0.5-2 s on a small CPU: after every epoch of a fast run it would dominate); it is
# always drawn at the end and when a run stops.
CURVES_SHARE = 0.05

# The loop all-reduces its stop flags, so these end every rank at the same step.
AGREED_STOPS = (loop.NonFiniteLoss, loop.Stopped)


def start(spec: str, flags: Mapping[str, object], options: RunOptions, ui: UI | None = None,
          data: DataSet | None = None) -> Result:
    """`data`: a data set handed over from Python (its recipe's `data` is then `python`)."""
    from netspec import pipeline

    info = distributed.from_env()
    if options.name is not None:
        rundir.check_run_name(options.name)
    with read_once(spec) as ref:
        documents = pipeline.read(ref)
        spec_files = rundir.spec_files_of(documents, options.params)
    shaped = pipeline.shape_documents(documents, options.params)
    recipe = resolve(shaped.network.train, flags)
    options = replace(options, log_every=options.log_every or DEFAULT_LOG_EVERY)

    def body() -> Result:
        prepared = prepare(shaped, spec_files, recipe, options, info, data)
        if not info.is_main:
            return execute(prepared, None, loop.LoopState(), None, ui or UI())
        run_dir = rundir.create(Path(options.out), shaped.name, options.name)
        with files.locked(run_dir):
            write_start(run_dir, prepared)
            return execute(prepared, run_dir, loop.LoopState(), None, ui or UI())

    return in_process_group(info, body)


@contextmanager
def read_once(spec: str) -> Iterator[str]:
    """`spec`, or for a pipe or other file that can be read only once (`netspec train <(…)`) a copy of what it
    holds, so that the spec can be parsed and then kept in the run folder.  The copy is read with the spec
    reader's size bound plus one byte, so an endless stream is still refused there."""
    from netspec.frontend.yaml_source import MAX_FILE_BYTES

    path = Path(spec)
    if not path.exists() or path.is_file() or path.is_dir():
        yield spec
        return
    with tempfile.TemporaryDirectory(prefix="netspec-spec-") as folder:
        copy = Path(folder) / (path.name if path.name.endswith((".yaml", ".yml")) else f"{path.name}.yaml")
        with open(path, "rb") as stream:
            copy.write_bytes(stream.read(MAX_FILE_BYTES + 1))
        yield str(copy)


def in_process_group(info: Dist, body: Callable[[], Result]) -> Result:
    """Runs `body`, then leaves the process group (if any): together with the other ranks when they all got
    there the same way (see distributed.shutdown)."""
    together = False
    try:
        result = body()
        together = True
        return result
    except AGREED_STOPS:
        together = True
        raise
    finally:
        distributed.shutdown(info, together)


RESUME_NEEDS = ("model", "optimizer", "state", "rng", "recipe", "spec", "options")  # what save_last writes


def resume(run_dir: Path, options: RunOptions, epochs: int | None, ui: UI | None = None,
           data: DataSet | None = None) -> Result:
    """Continues the run in `run_dir`; `data`: for a run whose data was handed over from Python, the same again."""
    info = distributed.from_env()
    run_dir = Path(run_dir)
    ui = ui or UI()
    with ExitStack() as held:
        if info.is_main:  # the writer: the folder must hold no links, and no other process may use it meanwhile
            files.refuse_links(run_dir)
            held.enter_context(files.locked(run_dir))
        saved = checkpoint.load(run_dir / "last.pt", needs=RESUME_NEEDS)
        recipe = from_json(saved["recipe"])
        if epochs is not None:
            recipe = replace(recipe, epochs=epochs)
            check(recipe)
        options = replace(options, subset=saved["options"].get("subset"), params=saved["spec"].get("params", {}),
                          sync_bn=saved["options"].get("sync_bn") is True,
                          test_every_epoch=options.test_every_epoch or saved["options"].get("test_every_epoch") is True,
                          log_every=options.log_every or saved["options"].get("log_every") or DEFAULT_LOG_EVERY)
        spec_files = SpecFiles.from_json(saved["spec"])

        def body() -> Result:
            from netspec.pipeline import shaped_network

            with tempfile.TemporaryDirectory(prefix="netspec-spec-") as folder:
                shaped = shaped_network(spec_files.write(Path(folder)), spec_files.params)
            prepared = prepare(shaped, spec_files, recipe, options, info, data)
            restore(prepared.setup, saved, run_dir / "last.pt")
            state = loop.resumed(saved["state"], info)
            gen = torch.Generator(device=prepared.setup.device)
            note = restore_aug_generator(gen, saved["rng"], prepared.setup, state, run_dir / "last.pt")
            if note and info.is_main:
                ui.message(f"netspec: {note}")
            restore_rank(prepared.setup, saved["rng"], gen, state, run_dir / "last.pt")
            return execute(prepared, run_dir if info.is_main else None, state, gen, ui)

        return in_process_group(info, body)


def execute(prepared: Prepared, run_dir: Path | None, state: loop.LoopState, gen: torch.Generator | None,
            ui: UI) -> Result:
    setup = prepared.setup
    if gen is None:
        gen = torch.Generator(device=setup.device)
    hooks = RunHooks(prepared, run_dir, gen, ui, state) if run_dir is not None else loop.Hooks()
    if run_dir is not None:
        epochs = setup.recipe.epochs
        val = f"{len(setup.data.val_y):,} validation / " if setup.data.has_val else ""
        ui.message(f"run folder {run_dir}: {setup.data.name}, {len(setup.data.train_y):,} train / {val}"
                   f"{len(setup.data.test_y):,} test examples, {epochs} epoch{'s' * (epochs != 1)} on "
                   f"{device_name(setup)}, {devices.precision_note(setup.device, setup.amp, setup.recipe.amp)}")
        if prepared.init_report is not None:
            ui.message(f"--init-from {prepared.options.init_from}: "
                       + render(prepared.init_report, "the weights", "the network", hint=False))
        for note in hooks.notes():
            ui.message(f"netspec: {note}")
        if state.epoch >= epochs and state.step_in_epoch == 0 and state.history:
            ui.message(f"the run has finished its {epochs} epochs; pass --epochs N (more) to train longer")
    test = None
    try:
        loop.run(setup, state, gen, hooks)
        if isinstance(hooks, RunHooks):
            test = final_test(prepared, state, hooks.run_dir)
            if test is not None:
                hooks.log(test)
            hooks.draw_curves()
    except (loop.NonFiniteLoss, loop.Stopped) as err:
        err.run_dir, err.saved_epoch = run_dir, state.epoch  # for the message: where the checkpoint is
        raise
    finally:
        if isinstance(hooks, RunHooks):
            hooks.close()
    early = loop.stops_early(setup.recipe, state) and state.epoch < setup.recipe.epochs
    if run_dir is not None:
        write_end(run_dir, prepared, state, test, early)
    rate = state.examples / state.train_time if state.train_time else 0.0
    return Result(run_dir, tuple(state.history), state.best_acc, state.best_epoch, rate, device_name(setup),
                  setup.model, test, early)


def final_test(prepared: Prepared, state: loop.LoopState, run_dir: Path) -> dict | None:
    """The kept weights on the test set, once, at the end (rank 0): from the kept epoch's record when it was
    evaluated then, else by loading best.pt into the model (so the model returned holds the kept weights)."""
    setup = prepared.setup
    if not setup.data.has_test or not state.history:
        return None
    kept = next(r for r in state.history if r["epoch"] == state.best_epoch)
    base = {"kind": "test", "epoch": kept["epoch"], "step": state.global_step}
    if "test_acc" in kept:
        return {**base, "test_loss": kept["test_loss"], "test_acc": kept["test_acc"],
                "examples": len(setup.data.test_y)}
    if state.best_epoch != state.epoch:
        checkpoint.load_into(setup.model, checkpoint.load(run_dir / "best.pt")["model"], str(run_dir / "best.pt"))
    loss, acc, count = loop.evaluate_on(setup.model, setup.data.test_x, setup.data.test_y, setup.size,
                                        setup.recipe.eval_batch_size, setup.channels_last, setup.amp)
    return {**base, "test_loss": loss, "test_acc": acc, "examples": count}


def device_name(setup: loop.Setup) -> str:
    name = str(setup.device) if setup.device.type != "cuda" else f"cuda:{setup.device.index or 0}"
    return f"{name} ×{setup.dist.world}" if setup.dist.enabled else name


# ── the run directory ─────────────────────────────────────────────────────────────────────────────────────────

def write_start(run_dir: Path, prepared: Prepared) -> None:
    setup = prepared.setup
    prepared.spec_files.write(run_dir / "spec")
    rundir.write_json(run_dir / "run.json", {
        "spec": prepared.shaped.name, "spec_file": f"spec/{prepared.spec_files.main}",
        "params": dict(prepared.spec_files.params), "recipe": setup.recipe.to_json(),
        "options": prepared.options.to_json(), "argv": sys.argv, "netspec": __version__,
        "torch": torch.__version__, "device": device_name(setup), "world_size": setup.dist.world,
        "amp": setup.amp, "channels_last": setup.channels_last,
        "data": {"name": setup.data.name, "train": len(setup.data.train_y), "test": len(setup.data.test_y),
                 "val": len(setup.data.val_y) if setup.data.has_val else 0, "classes": list(setup.data.classes)},
        "selection": selection(setup)})
    rundir.write_text(run_dir / "summary.txt", summary_text(prepared, None))
    rundir.write_diagram(prepared.shaped, run_dir / "diagram.svg")


def selection(setup: loop.Setup) -> str:
    """How the kept weights (best.pt, model.safetensors) are chosen, as run.json and summary.txt say it."""
    if setup.data.has_val:
        return "the epoch with the best validation accuracy"
    return "the last epoch (no validation set to choose on)"


def write_end(run_dir: Path, prepared: Prepared, state: loop.LoopState, test: dict | None = None,
              early: bool = False) -> None:
    rundir.write_text(run_dir / "summary.txt", summary_text(prepared, state, test, early))


def summary_text(prepared: Prepared, state: loop.LoopState | None, test: dict | None = None,
                 early: bool = False) -> str:
    from netspec.backends.summary import render_table, summarize

    recipe = prepared.setup.recipe
    lines = [render_table(summarize(prepared.shaped, None)), "", "recipe: " + ", ".join(
        f"{k}={v}" for k, v in recipe.to_json().items()), f"kept weights: {selection(prepared.setup)}"]
    if state is not None and state.history:
        last = state.history[-1]
        val = f", val acc {last['val_acc']:.3f}" if "val_acc" in last else ""
        lines += ["", f"after {last['epoch']} epochs{' (stopped early: patience)' if early else ''}: loss "
                      f"{last['loss']:.3f}, train acc {last['train_acc']:.3f}{val}, {last['examples_per_s']:.1f} "
                      f"examples/sec on {device_name(prepared.setup)}",
                  f"kept epoch {state.best_epoch}" + (f" (val acc {state.best_acc:.4f})" if state.best_acc >= 0
                                                       else "") +
                  f"; training time {state.train_time:.1f} s (evaluation excluded)"]
        if test is not None:
            lines.append(f"test (kept weights, epoch {test['epoch']}): loss {test['test_loss']:.4f}, "
                         f"acc {test['test_acc']:.4f} on {test['examples']:,} examples")
    return "\n".join(lines) + "\n"


class RunHooks(loop.Hooks):
    """Rank 0's side of the loop: metrics, checkpoints, curves, and the UI."""

    def __init__(self, prepared: Prepared, run_dir: Path, gen: torch.Generator, ui: UI, state: loop.LoopState):
        from netspec.train.loggers import MetricLog

        self.prepared, self.run_dir, self.gen, self.ui = prepared, run_dir, gen, ui
        self.setup = prepared.setup
        self.ranks: list | None = None   # every rank's generator states, for last.pt (DDP)
        resumed = state.global_step > 0 or bool(state.history)
        self.metrics = MetricLog(run_dir, state.global_step if resumed else None)
        self.started, self.drawing = time.perf_counter(), 0.0   # seconds since the start, and spent on curves

    def notes(self) -> list[str]:
        from netspec.train.loggers import TENSORBOARD_MISSING

        notes = [self.metrics.note] if self.metrics.note else []
        return notes + ([TENSORBOARD_MISSING] if self.metrics.tensorboard is None else [])

    def close(self) -> None:
        self.metrics.close()

    def epoch_start(self, epoch: int, steps: int, done: int) -> None:
        self.ui.epoch_start(epoch, self.setup.recipe.epochs, steps, done)

    def progress(self, steps: int, loss: float, acc: float, examples_per_s: float) -> None:
        self.ui.progress(steps, loss, acc, examples_per_s)

    def log(self, record: dict) -> None:
        self.metrics.log(record)

    def stop_requested(self) -> bool:
        return self.ui.stop_requested()

    def rank_states(self, states: list | None) -> None:
        self.ranks = states

    def epoch_end(self, record: dict, state: loop.LoopState, best: bool) -> None:
        self.log(record)
        self.ui.epoch_end(record, self.setup.recipe.epochs, device_name(self.setup))
        if best:  # before last.pt, which records the best epoch: a best.pt that failed to write is never claimed
            self.save_best(state, record)
        self.save_last(state)
        if self.drawing <= CURVES_SHARE * (time.perf_counter() - self.started):
            self.draw_curves()

    def stop(self, state: loop.LoopState) -> None:
        self.save_last(state)
        self.draw_curves()

    def draw_curves(self) -> None:
        begin = time.perf_counter()
        try:
            self._write_curves()
        finally:
            self.drawing += time.perf_counter() - begin

    def _write_curves(self) -> None:
        from netspec.train.plots import write_curves

        write_curves(self.run_dir / "curves.png", self.metrics.records, f"{self.prepared.shaped.name} on "
                     f"{self.setup.data.name}")

    def common(self) -> dict:
        return {"recipe": self.setup.recipe.to_json(), "spec": self.prepared.spec_files.to_json(),
                "options": self.prepared.options.to_json(), "netspec": __version__,
                "precision": {"amp": self.setup.amp, "channels_last": self.setup.channels_last}}

    def save_last(self, state: loop.LoopState) -> None:
        cuda = torch.cuda.get_rng_state(self.setup.device) if self.setup.device.type == "cuda" else None
        checkpoint.save(self.run_dir / "last.pt", {
            **self.common(), "model": self.setup.model.state_dict(), "optimizer": self.setup.optimizer.state_dict(),
            "state": state.to_json(), "rng": {"torch": torch.get_rng_state(), "cuda": cuda,
                                              "aug": self.gen.get_state(),
                                              "aug_device": self.gen.device.type,
                                              **({"ranks": self.ranks} if self.ranks else {})}})

    def save_best(self, state: loop.LoopState, record: dict) -> None:
        weights = self.setup.model.state_dict()
        checkpoint.save(self.run_dir / "best.pt", {**self.common(), "model": weights, "state": state.to_json()})
        checkpoint.save_safetensors(self.run_dir / "model.safetensors", weights, {
            "spec": self.prepared.shaped.name, "epoch": record["epoch"], "params": dict(self.prepared.spec_files.params),
            **{key: f"{record[key]:.4f}" for key in ("val_acc", "test_acc") if key in record}})
