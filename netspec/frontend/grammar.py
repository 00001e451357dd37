"""The spec language's vocabulary, declared once: item modifiers, composite kinds, names, the train recipe's keys.

The JSON Schema (`netspec.generators.schema`), the semantic rules and the expander all read these.
"""

from __future__ import annotations

from pathlib import Path

# The published JSON Schema, generated from this module and the op registry (a test fails when it is stale).
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "netspec.schema.json"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MODIFIERS = ("name", "from", "when", "repeat", "as", "inline", "doc")
COMPOSITES = ("seq", "concat", "add")
TRAIN_KEYS = {
    "lr": ({"type": "number", "exclusiveMinimum": 0}, "learning rate"),
    "epochs": ({"type": "integer", "minimum": 0}, "passes over the training set"),
    "batch_size": ({"type": "integer", "minimum": 1}, "examples per step (over all processes)"),
    "resize": ({"type": ["integer", "null"], "minimum": 1}, "resize the images to this side length; null keeps them"),
    "optimizer": ({"enum": ["sgd", "momentum", "adamw"]}, "sgd (plain, as the course), momentum (0.9, Nesterov) or adamw"),
    "momentum": ({"type": "number", "minimum": 0, "maximum": 1}, "momentum for optimizer momentum"),
    "weight_decay": ({"type": "number", "minimum": 0}, "L2 penalty (decoupled for adamw)"),
    "schedule": ({"enum": ["constant", "cosine", "onecycle"]}, "learning-rate schedule over the run"),
    "warmup_epochs": ({"type": "number", "minimum": 0}, "linear warm-up length for cosine"),
    "label_smoothing": ({"type": "number", "minimum": 0, "maximum": 1}, "cross-entropy label smoothing"),
    "init": ({"enum": ["xavier", "default"]}, "xavier: xavier_uniform_ on conv/linear weights (the course); "
             "default: PyTorch's own initialization"),
    "data": ({"type": "string"}, "data set: fashion-mnist, mnist, cifar10, folder:PATH or synthetic"),
    "augment": ({"type": "array", "items": {"enum": ["flip", "crop"]}},
                "train-time augmentations done on the device: flip (horizontal), crop (random 2-pixel shifts)"),
    "eval_batch_size": ({"type": "integer", "minimum": 1}, "batch size for evaluation"),
    "seed": ({"type": "integer"}, "random seed"),
    "amp": ({"type": ["boolean", "null"]}, "bf16 autocast; null (default): on CUDA only"),
}

RESERVED = frozenset(COMPOSITES) | frozenset(MODIFIERS) | {"input", "output"}
