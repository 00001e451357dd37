"""The training recipe: the spec's `train:` section, then command-line flags.  No torch.

A `Recipe` is everything that decides *what* is learned (optimizer, schedule, data, augmentation, seed); a
`RunOptions` is everything that decides only *where and how fast* (device, AMP, compile, output folder).  A run
is repeatable from its recipe alone; the options may change between a run and its resume.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Mapping

OPTIMIZERS = ("sgd", "momentum", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
INITS = ("xavier", "default")
AUGMENTS = ("flip", "crop")
DATASETS = ("fashion-mnist", "mnist", "cifar10", "synthetic")  # plus folder:PATH
PYTHON_DATA = "python"    # data handed over from Python (netspec.train(train_data=…)); not a CLI choice
MAX_COUNT = 2**31 - 1     # batch sizes, epochs, sizes: far above any real run, far below torch's int64 limits
MAX_SEED = 2**63 - 1      # torch.manual_seed takes a 64-bit number


class RecipeError(ValueError):
    """A recipe value that cannot be used (the CLI shows it as a usage error, exit 2)."""


@dataclass(frozen=True)
class Recipe:
    """Defaults are the course's recipe (d2l): plain SGD, constant lr, xavier init, 10 epochs, no augmentation."""

    data: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    aux_weight: float = 0.3      # the loss weight of each auxiliary output (GoogLeNet's paper: 0.3)
    resize: int | None = None
    init: str = "xavier"
    augment: tuple[str, ...] = ()
    eval_batch_size: int = 1024
    seed: int = 0
    amp: bool | None = None      # None: bf16 autocast on CUDA only
    val_split: float = 0.0       # fraction of the training set held out for validation (fixed, seeded); 0: none
    patience: int = 0            # early stopping: epochs without a better validation accuracy; 0: off

    def to_json(self) -> dict:
        out = asdict(self)
        out["augment"] = list(self.augment)
        return out


@dataclass(frozen=True)
class RunOptions:
    """How and where a run executes; never changes what it learns (except `subset`, which is recorded)."""

    device: str = "auto"
    compile: bool = False
    sync_bn: bool = False            # DDP: BatchNorm statistics over all ranks (changes what a run learns: recorded)
    subset: int | None = None
    out: str = "runs"
    data_dir: str | None = None
    download: bool = True
    progress: bool | None = None     # None: a bar when stderr is a terminal
    log_every: int | None = None     # steps between `step` lines in metrics.jsonl; None: 50, or the run's own on
                                     # resume
    threads: int | None = None       # torch.set_num_threads on CPU; None leaves torch's choice
    init_from: str | None = None
    max_params: int | None = None    # the most parameters to build (netspec.backends.limits); None: the default
    params: Mapping[str, object] = field(default_factory=dict)   # --set overrides of the spec's params
    name: str | None = None          # the run folder's name under `out`; None: <spec>-<timestamp>
    test_every_epoch: bool = False   # evaluate the test set after every epoch, not only once at the end

    def to_json(self) -> dict:
        out = asdict(self)
        out["params"] = dict(self.params)
        return out


def resolve(spec_train: Mapping[str, object], flags: Mapping[str, object]) -> Recipe:
    """The spec's `train:` values, then every flag that was given (None means "not given")."""
    names = {f.name for f in fields(Recipe)}
    values: dict[str, object] = {}
    for source in (spec_train, flags):
        for key, value in source.items():
            if key in names and value is not None:
                values[key] = value
    # `resize: null` in a spec means "keep the size"; the flag `--resize 0` means the same.
    if "resize" in spec_train and spec_train["resize"] is None and flags.get("resize") is None:
        values["resize"] = None
    if values.get("resize") == 0:
        values["resize"] = None
    if "augment" in values:
        values["augment"] = _augments(values["augment"])
    recipe = Recipe(**values)
    check(recipe)
    return recipe


def _augments(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.replace(" ", "").split(",") if part and part != "none"]
    return tuple(value)


def check(recipe: Recipe) -> None:
    """Raises RecipeError for values the loop cannot use (the schema checks the spec; this checks flags too)."""
    if recipe.optimizer not in OPTIMIZERS:
        raise RecipeError(f"unknown optimizer `{recipe.optimizer}`; choose one of {', '.join(OPTIMIZERS)}")
    if recipe.schedule not in SCHEDULES:
        raise RecipeError(f"unknown schedule `{recipe.schedule}`; choose one of {', '.join(SCHEDULES)}")
    if recipe.init not in INITS:
        raise RecipeError(f"unknown init `{recipe.init}`; choose one of {', '.join(INITS)}")
    for name in recipe.augment:
        if name not in AUGMENTS:
            raise RecipeError(f"unknown augmentation `{name}`; choose from {', '.join(AUGMENTS)}")
    if recipe.data not in DATASETS + (PYTHON_DATA,) and not recipe.data.startswith("folder:"):
        raise RecipeError(f"unknown data set `{recipe.data}`; choose one of {', '.join(DATASETS)} or folder:PATH")
    positive = {"lr": recipe.lr, "batch_size": recipe.batch_size, "eval_batch_size": recipe.eval_batch_size}
    for name, value in positive.items():
        if not 0 < value < math.inf:
            raise RecipeError(f"{name} must be positive, got {value}")
    if recipe.epochs < 1:  # 0 epochs left a run folder without checkpoints or results
        raise RecipeError(f"epochs must be ≥ 1, got {recipe.epochs}")
    if not 0 <= recipe.val_split < 1:
        raise RecipeError(f"val_split must be a fraction in [0, 1), got {recipe.val_split}")
    if recipe.patience < 0:
        raise RecipeError(f"patience must be ≥ 0 (0: no early stopping), got {recipe.patience}")
    if recipe.patience and not recipe.val_split and not (recipe.data.startswith("folder:") or recipe.data == PYTHON_DATA):
        raise RecipeError("patience stops on the validation accuracy; this run has no validation split "
                          "(add --val-split FRACTION)")
    # Whole numbers past these failed inside torch (an int64 overflow) with an internal error.
    for name in ("batch_size", "eval_batch_size", "epochs"):
        if getattr(recipe, name) > MAX_COUNT:
            raise RecipeError(f"{name} must be at most {MAX_COUNT:,}, got {getattr(recipe, name)}")
    if not -MAX_SEED - 1 <= recipe.seed <= MAX_SEED:
        raise RecipeError(f"seed must be a 64-bit whole number (-2**63 to 2**63-1), got {recipe.seed}")
    # Negative values here ran, or failed inside torch with an internal error (tests/test_cli_misuse.py).
    at_least_zero = {"weight_decay": recipe.weight_decay, "warmup_epochs": recipe.warmup_epochs,
                     "aux_weight": recipe.aux_weight}
    for name, value in at_least_zero.items():
        if not 0 <= value < math.inf:
            raise RecipeError(f"{name} must be ≥ 0, got {value}")
    if not 0 <= recipe.momentum < 1:
        raise RecipeError(f"momentum must be in [0, 1), got {recipe.momentum}")
    if not 0 <= recipe.label_smoothing < 1:
        raise RecipeError(f"label_smoothing must be in [0, 1), got {recipe.label_smoothing}")
    if recipe.resize is not None and not 1 <= recipe.resize <= MAX_COUNT:
        raise RecipeError(f"resize must be a positive side length (or 0/null to keep the size), got {recipe.resize}")


FIELD_TYPES = {  # a saved recipe's values, by the type annotation of their field
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "int | None": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "bool | None": lambda v: v is None or isinstance(v, bool),
    "tuple[str, ...]": lambda v: isinstance(v, (list, tuple)) and all(isinstance(i, str) for i in v),
}


def from_json(data: object) -> Recipe:
    """A recipe saved in a run directory or checkpoint; unknown keys (from a newer netspec) are ignored.  Each
    value is checked for its type and then as `check` checks flags: RecipeError names the first bad one."""
    if not isinstance(data, Mapping):
        raise RecipeError("the recipe is not a mapping")
    values = {}
    for f in fields(Recipe):
        if f.name in data:
            value = data[f.name]
            if not FIELD_TYPES[str(f.type)](value):
                raise RecipeError(f"{f.name} is {value!r:.60}, not a {f.type}")
            values[f.name] = value
    if "augment" in values:
        values["augment"] = tuple(values["augment"])
    recipe = Recipe(**values)
    check(recipe)
    return recipe
