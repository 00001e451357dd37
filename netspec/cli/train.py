"""`netspec train`, `netspec eval`, `netspec export`: the command-line side of netspec.train.

Importing this module never imports torch (building the parser is part of every command); handlers do.
Exit codes: 0 done; 2 a usage mistake (bad flag value, missing run folder); 1 a runtime failure (data not found
or corrupt, a NaN loss, an unreadable checkpoint); 130 stopped by Ctrl-C after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

EXIT_INTERRUPTED = 130
REPEAT_WINDOW = 2.0   # seconds in which a repeated SIGINT/SIGTERM is the same stop request (see on_sigint)
STOP_SIGNALS = ("SIGINT", "SIGTERM")
OPTIMIZERS = ("sgd", "momentum", "adamw")   # equal to recipe.OPTIMIZERS etc. (a test checks); repeated here so
SCHEDULES = ("constant", "cosine", "onecycle")  # that building the parser imports nothing heavy
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,4})?")   # as netspec.train.devices (imported here without torch)


def device_choice(text: str) -> str:
    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use auto, cpu, cuda, cuda:N or mps")
    return text
RECIPE_FLAGS = ("data", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "schedule",
                "warmup_epochs", "label_smoothing", "resize", "init", "augment", "eval_batch_size", "seed", "amp",
                "val_split", "patience")


def register(sub, add_set_flag) -> None:
    from netspec.cli.common import add_max_params_flag

    p = sub.add_parser("train", help="train a network (Fashion-MNIST by default) into runs/<spec>-<time>/",
                       description="Trains SPEC with the recipe in its `train:` section, overridden by flags. "
                                   "Under torchrun, trains with DistributedDataParallel. See docs/training.md.")
    p.add_argument("spec", metavar="SPEC", nargs="?",
                   help="a path or a built-in name (omit with --resume)")
    _recipe_flags(p)
    _run_flags(p)
    p.add_argument("--out", default="runs", metavar="DIR", help="where run folders go (default: runs)")
    p.add_argument("--name", metavar="NAME", help="the run folder's name under --out; refused if it exists "
                   "(default: <spec>-<YYYYmmdd-HHMMSS>)")
    p.add_argument("--test-every-epoch", action="store_true",
                   help="evaluate the test set after every epoch (default: once, at the end, on the kept weights)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt "
                   "(default: start a new run)")
    p.add_argument("--init-from", metavar="WEIGHTS", help="start from these weights (.safetensors, .pt, run "
                   "folder) (default: the recipe's initialization)")
    p.add_argument("--log-every", type=int, metavar="N",
                   help="steps between metrics.jsonl lines (default: 50; on --resume, the run's own)")
    add_set_flag(p)
    add_max_params_flag(p)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("eval", help="test loss, top-1/top-5, per-class accuracy and confusion matrix of a run",
                       description="Evaluates a run's kept weights on its data set's test split; writes "
                                   "confusion.png and confusion.json beside the checkpoint (or into --out).")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("--data", help="another data set than the run's, with the same image shape (default: the run's)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="examples per evaluation batch (default: the run's eval batch size)")
    _run_flags(p)
    p.add_argument("--json", action="store_true", help="machine-readable output, the confusion matrix included "
                   "(default: text)")
    p.add_argument("--out", metavar="DIR", help="where confusion.png and confusion.json go (default: the "
                   "checkpoint's folder)")
    add_max_params_flag(p)
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("export", help="a run's best weights as .safetensors, .onnx, .py (+ weights) or .pt")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="model.safetensors | model.onnx | model.py (writes model.safetensors beside it) | "
                        "model.pt (required; the suffix picks the format)")
    add_max_params_flag(p)
    p.set_defaults(handler=cmd_export)


def _default(name: str) -> str:
    """The help's default of a recipe flag: the spec's `train:` value, else the course's (Recipe's field)."""
    from netspec.train.recipe import Recipe

    value = Recipe.__dataclass_fields__[name].default
    shown = {None: "none", (): "none", True: "on", False: "off"}.get(value, value) \
        if isinstance(value, (type(None), tuple, bool)) else value
    return f"(default: the spec's `train: {{{name}: …}}`, else {shown})"


def _recipe_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recipe (each flag overrides the spec's `train:` section, which overrides the "
                             "course's defaults)")
    g.add_argument("--data", metavar="NAME", help="fashion-mnist, mnist, cifar10, folder:PATH, synthetic "
                   + _default("data"))
    g.add_argument("--epochs", type=int, metavar="N", help="passes over the training set " + _default("epochs"))
    g.add_argument("--batch-size", type=int, metavar="N",
                   help="examples per step, over all processes " + _default("batch_size"))
    g.add_argument("--lr", type=float, metavar="X", help="(peak) learning rate " + _default("lr"))
    g.add_argument("--optimizer", choices=OPTIMIZERS,
                   help="sgd (plain), momentum (Nesterov), adamw " + _default("optimizer"))
    g.add_argument("--momentum", type=float, metavar="X", help="for --optimizer momentum " + _default("momentum"))
    g.add_argument("--weight-decay", type=float, metavar="X",
                   help="on weights (not biases or norm scales) " + _default("weight_decay"))
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule " + _default("schedule"))
    g.add_argument("--warmup-epochs", type=float, metavar="X",
                   help="linear warm-up for cosine " + _default("warmup_epochs"))
    g.add_argument("--label-smoothing", type=float, metavar="X",
                   help="cross-entropy label smoothing " + _default("label_smoothing"))
    g.add_argument("--resize", type=int, metavar="N",
                   help="input side length; must match the network (0: keep) " + _default("resize"))
    g.add_argument("--init", choices=("xavier", "default"),
                   help="xavier (the course) or PyTorch's default " + _default("init"))
    g.add_argument("--augment", metavar="LIST", help="flip,crop (on the device) or none " + _default("augment"))
    g.add_argument("--eval-batch-size", type=int, metavar="N",
                   help="examples per evaluation batch " + _default("eval_batch_size"))
    g.add_argument("--seed", type=int, metavar="N", help="random seed " + _default("seed"))
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on for CUDA, off for CPU)")
    g.add_argument("--val-split", type=float, metavar="FRACTION",
                   help="hold out this fraction of the training set (fixed, seeded) for validation; the best "
                        "epoch on it is kept " + _default("val_split"))
    g.add_argument("--patience", type=int, metavar="N",
                   help="stop after N epochs without a better validation accuracy (0: never) " + _default("patience"))


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the data set's files (default: $NETSPEC_DATA, then the usual places)")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="never download data (default: download when the files are not found)")
    p.add_argument("--device", type=device_choice, default="auto", metavar="DEVICE",
                   help="auto (CUDA if any), cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--subset", type=int, metavar="N",
                   help="use the first N train and N test examples (default: all)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (default: off)")
    p.add_argument("--sync-bn", action="store_true", help="under torchrun on CUDA: BatchNorm statistics over all "
                   "processes (SyncBatchNorm; not for batchnorm impl: formula) (default: off)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")


class TerminalUI:
    """A tqdm bar per epoch on stderr, one course-style line per epoch on stdout, Ctrl-C as a stop request."""

    def __init__(self, progress: bool | None):
        self.show_bar = sys.stderr.isatty() if progress is None else progress
        self.bar = None
        self.stopping = False
        self.stopped_at = 0.0

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        if self.show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                            leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.25)

    def progress(self, steps: int, loss: float, acc: float, examples_per_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.3f}, acc {acc:.3f}, {examples_per_s:,.0f} ex/s", refresh=False)
            self.bar.update(steps - self.bar.n)

    def epoch_end(self, record: dict, epochs: int, device: str) -> None:
        self.close()
        print(epoch_line(record, epochs, device), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def stop_requested(self) -> bool:
        return self.stopping

    def on_sigint(self, signum, frame) -> None:
        """SIGINT (Ctrl-C) and SIGTERM ask for a stop at the next step; a second one aborts.  A repeat within
        REPEAT_WINDOW seconds is the same request delivered twice, not a second Ctrl-C: under torchrun the
        terminal's SIGINT reaches every rank, then the agent forwards it to them again."""
        now = time.monotonic()
        if self.stopping:
            if now - self.stopped_at < REPEAT_WINDOW:
                return
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without waiting for the step to end
        self.stopping, self.stopped_at = True, now
        self.close()
        if os.environ.get("RANK", "0") == "0":  # one message, not one per process
            self.message("netspec: stopping after this step and saving a checkpoint (Ctrl-C again to abort)")


def epoch_line(record: dict, epochs: int, device: str) -> str:
    """The course's epoch line, with validation and test columns for the sets evaluated in that epoch."""
    evaluated = "".join(f", {name} acc {record[f'{name}_acc']:.3f}" for name in ("val", "test")
                        if f"{name}_acc" in record)
    return (f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.3f}, train acc {record['train_acc']:.3f}"
            f"{evaluated}, {record['examples_per_s']:.1f} examples/sec on {device}")


def result_line(result) -> str:
    """What a finished run ends with: which weights were kept, and how they did on the test set."""
    if result.best_acc >= 0:
        kept = f"kept epoch {result.best_epoch} (best val acc {result.best_acc:.4f})"
    else:
        kept = f"kept the last epoch ({result.best_epoch}; no validation set to choose on)"
    early = "; stopped early (patience)" if result.stopped_early else ""
    test = (f"; test loss {result.test['test_loss']:.4f}, test acc {result.test['test_acc']:.4f}"
            if result.test else "")
    return f"{kept}{early}{test}; run folder {result.run_dir}"


def _flags(args) -> dict:
    return {name: getattr(args, name, None) for name in RECIPE_FLAGS}


COUNT_FLAGS = ("subset", "threads", "log_every", "batch_size")   # when given: whole numbers ≥ 1
MAX_COUNT = 2**31 - 1   # equal to recipe.MAX_COUNT (importing it here would import the training package)


def check_counts(args) -> None:
    """Flags that count things must be ≥ 1: `--subset -5` trained on 2,043 examples (a negative slice), `--threads
    -1` was an internal error, `--subset 0` a NaN loss (found by tests/test_cli_misuse.py)."""
    from netspec.cli.common import UsageError

    for name in COUNT_FLAGS:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if value is not None and value > MAX_COUNT:  # 10**23 overflowed inside torch: an internal error
            raise UsageError(f"--{name.replace('_', '-')} must be at most {MAX_COUNT:,}, got {value}")


def _options(args, params: dict):
    from netspec.train.recipe import RunOptions

    return RunOptions(device=args.device, compile=args.compile, sync_bn=getattr(args, "sync_bn", False),
                      subset=args.subset, out=getattr(args, "out", "runs"),
                      data_dir=args.data_dir, download=args.download, progress=args.progress,
                      log_every=getattr(args, "log_every", None), threads=args.threads,
                      init_from=getattr(args, "init_from", None), max_params=args.max_params, params=params,
                      name=getattr(args, "name", None), test_every_epoch=getattr(args, "test_every_epoch", False))


def passive_threads() -> None:
    """OpenMP threads that sleep instead of spinning while they wait.  Must run before torch is imported (libgomp
    reads it once).  On a machine shared with other jobs, spinning threads slowed BN-LeNet down 10× (see
    docs/benchmarks.md; an idle machine was not available to measure the other side).  The user's setting wins."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cmd_train(args) -> int:
    from netspec.cli.common import UsageError, parse_overrides

    passive_threads()

    if (args.spec is None) == (args.resume is None):
        raise UsageError("train needs SPEC, or --resume RUN_DIR (not both)")
    check_counts(args)
    if args.resume and not (Path(args.resume) / "last.pt").is_file():
        raise UsageError(f"--resume {args.resume}: no last.pt there (give the run folder)")
    if args.resume:
        given = [n for n in RECIPE_FLAGS if n != "epochs" and getattr(args, n) is not None] + \
                (["set"] if args.set else []) + (["init-from"] if args.init_from else []) + \
                (["name"] if args.name else [])
        if given:
            raise UsageError(f"--resume keeps the run's recipe; only --epochs may change (got --{given[0]})")
    ui = TerminalUI(args.progress)
    return _guarded(lambda: _train(args, parse_overrides(args.set), ui))


def _train(args, params: dict, ui: TerminalUI) -> int:
    from netspec.train import run

    options = _options(args, params)
    previous = _install_sigint(ui)
    try:
        if args.resume:
            result = run.resume(Path(args.resume), options, args.epochs, ui)
        else:
            result = run.start(args.spec, _flags(args), options, ui)
    finally:
        ui.close()
        _restore_sigint(previous)
    if result.run_dir is not None and result.history:
        print(result_line(result), file=sys.stderr)
    return 0


def _install_sigint(ui: TerminalUI):
    if threading.current_thread() is not threading.main_thread():
        return None
    return {name: signal.signal(getattr(signal, name), ui.on_sigint) for name in STOP_SIGNALS}


def _restore_sigint(previous) -> None:
    for name, handler in (previous or {}).items():
        signal.signal(getattr(signal, name), handler)


def _guarded(body) -> int:
    """Runs a handler body, turning the training package's own exceptions into messages and exit codes."""
    from netspec.cli.common import UsageError
    from netspec.train.checkpoint import CheckpointError
    from netspec.train.datasets import DataError
    from netspec.train.export import ExportError, ExportRefused
    from netspec.train.files import RunDirError, RunDirRefused
    from netspec.train.loop import NonFiniteLoss, Stopped
    from netspec.train.recipe import RecipeError

    try:
        return body()
    except (RecipeError, RunDirRefused, ExportRefused) as err:
        raise UsageError(str(err))
    except (DataError, CheckpointError, ExportError, RunDirError) as err:
        print(f"netspec: error: {err}", file=sys.stderr)
        return 1
    except NonFiniteLoss as err:
        run_dir = getattr(err, "run_dir", None)
        kept = (f"the last good checkpoint is {run_dir}/last.pt (end of epoch {err.saved_epoch})"
                if run_dir is not None and getattr(err, "saved_epoch", 0) else "no epoch had finished, so no checkpoint")
        print(f"netspec: error: {err}; training stopped and {kept}. Try a lower --lr.", file=sys.stderr)
        return 1
    except Stopped as err:
        run_dir = getattr(err, "run_dir", None) or "RUN_DIR"
        print(f"netspec: stopped; checkpoint saved in {run_dir}/last.pt — continue with "
              f"`netspec train --resume {run_dir}`", file=sys.stderr)
        return EXIT_INTERRUPTED


def cmd_eval(args) -> int:
    import json

    passive_threads()
    from netspec.train.export import evaluate_run

    def body() -> int:
        result = evaluate_run(args.run, args.data, args.data_dir, args.device, args.batch_size, args.subset,
                              args.download, args.max_params, args.out)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(eval_text(result))
        return 0

    _require_run(args.run)
    check_counts(args)
    return _guarded(body)


def eval_text(result: dict) -> str:
    top5 = f", top-5 {result['top5']:.4f}" if result["top5"] is not None else ""
    lines = [f"{result['checkpoint']}: test loss {result['test_loss']:.4f}, test acc {result['test_acc']:.4f}{top5} "
             f"on {result['examples']:,} {result['data']} examples ({result['device']}"
             f"{', bf16 autocast as trained' if result['amp'] else ''})", "per-class accuracy:"]
    width = max(len(name) for name in result["per_class"])
    counts = [sum(row) for row in result["confusion"]]
    for (name, acc), count in zip(result["per_class"].items(), counts):
        lines.append(f"  {name:<{width}}  {'-' if acc is None else f'{acc:.3f}'}  ({count:,})")
    lines.append("confusion matrix: " + ", ".join(result["files"]))
    return "\n".join(lines)


def cmd_export(args) -> int:
    from netspec.train.export import export_run

    def body() -> int:
        for path in export_run(args.run, Path(args.output), args.max_params):
            print(f"wrote {path}", file=sys.stderr)
        return 0

    _require_run(args.run)
    return _guarded(body)


def _require_run(ref: str) -> None:
    from netspec.cli.common import UsageError

    if not Path(ref).exists():
        raise UsageError(f"{ref}: no such run folder or checkpoint")
