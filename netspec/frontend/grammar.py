"""The spec language's vocabulary, declared once: item kinds, modifiers, names, the train recipe's keys.

An item is one kind key with its value, plus optional modifiers:

    op          `conv: {out: 64}` or a bare `relu`: an op of the registry with its arguments
    template    `basic: {channels: 64}` or a bare name: a block template with its arguments
    seq         `seq: [item, …]`: items applied one after another (`inline: true` opens no scope)
    branches    a merge op (any number of inputs) given a list: `concat: [[…], […]]`, each branch a list of
                items or one item, all fed the same input
    merge from  a merge op given a mapping: `add: {from: [a, b]}` (its `from:` is the item's)

The JSON Schema (`netspec.generators.schema`), the semantic rules, the parser and the expander all read these.
"""

from __future__ import annotations

import re
from pathlib import Path

from netspec.ops import OPS

# The published JSON Schema, generated from this module and the op registry (a test fails when it is stale).
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "netspec.schema.json"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME_RULE = "a name: letters, digits and _, not starting with a digit"  # NAME_PATTERN in words
# An item's `name:` (as evaluated, when it is an expression): a name, or a plain number like the unnamed items'.
# `-` is allowed after the first character (torchvision's RegNet has `block1-0`): an item's name is a module path
# segment, never an expression's variable, so it need not be a Python identifier (the backends fall back to
# getattr/add_module where it is not one).
ITEM_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*|[0-9]+)$")
ITEM_NAME_RULE = "letters, digits, _ and - (starting with a letter or _), or a plain number"
SEQ = "seq"
# Each modifier with its JSON Schema and description (the schema's item properties, in this order).
MODIFIER_SCHEMAS = {
    "name": ({"type": ["string", "integer"]}, "the node's name in its scope (and in the state_dict); may be an "
             "expression such as \"layer${i+1}\"; unnamed items are named by their index in the seq"),
    "from": ({"$ref": "#/$defs/from"}, "earlier named node(s), or `input` (the enclosing block's input), that feed "
             "this item instead of the previous item"),
    "when": ({"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}]},
             "when false, the item is skipped and passes its input through"),
    "repeat": ({"anyOf": [{"type": "integer", "minimum": 0}, {"$ref": "#/$defs/expression"}]},
               "repeat the item this many times, chained"),
    "as": ({"type": "string", "pattern": NAME_PATTERN}, "the index variable of `repeat` (0-based)"),
    "inline": ({"type": "boolean"}, "on a `seq` (with or without `repeat`): open no scope; its items are named in "
               "the enclosing seq as if written there, unnamed ones numbered on as nn.Sequential(*layers) numbers "
               "them"),
    "doc": ({"type": "string"}, "a note for readers"),
    "lint": ({"$ref": "#/$defs/lint"}, "lint findings intended here: `{ignore: [rule, …], reason: why}` silences "
             "those rules on this item and everything inside it"),
}
MODIFIERS = tuple(MODIFIER_SCHEMAS)

# `netspec lint`'s rules: name → (severity, what it finds).  A spec names them in `lint: {ignore: [...]}` (on an
# item, or at the top level for the whole network); netspec.passes.lint implements them.
LINT_RULES = {
    "bias-before-batchnorm": ("warning", "a conv or linear with a bias right before BatchNorm, which cancels it"),
    "dropped-pixels": ("warning", "a strided conv or pool whose windows never reach the input's last rows or "
                       "columns (PyTorch's floor division drops them)"),
    "unused": ("warning", "nodes whose output never reaches the network's output (a dead branch, reported once)"),
    "double-activation": ("warning", "an activation applied right after another"),
    "dropout-before-batchnorm": ("warning", "dropout feeding BatchNorm (its statistics differ between training "
                                 "and evaluation)"),
    "activation-on-logits": ("warning", "an activation or softmax on a classifier's logits, which the "
                             "cross-entropy loss of `netspec train` expects raw"),
    "unaligned-channels": ("info", "conv or linear output channels that are not a multiple of 8 (the fast "
                           "kernels of GPUs work in multiples of 8); the classifier's last layer is exempt"),
}
LINT_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["ignore"],
    "properties": {
        "ignore": {"description": "the rules to silence: " + "; ".join(f"{rule}: {doc}" for rule, (_, doc)
                                                                        in LINT_RULES.items()),
                   "type": "array", "minItems": 1, "items": {"enum": list(LINT_RULES)}},
        "reason": {"description": "why the finding is intended (for readers; `netspec lint` counts silenced "
                                  "findings)", "type": "string"},
    },
}
TEMPLATE_KEYS = ("doc", "params")     # a block template's own keys; the others are its body item


def takes_branches(op) -> bool:
    """Whether an op merges any number of inputs, and so also takes them as branches (`concat: [[…], […]]`)."""
    return op.max_inputs == 0


MERGES = tuple(name for name, op in OPS.items() if takes_branches(op))
COMPOSITES = (SEQ,) + MERGES
TRAIN_KEYS = {
    "lr": ({"type": "number", "exclusiveMinimum": 0}, "learning rate"),
    "epochs": ({"type": "integer", "minimum": 1}, "passes over the training set"),
    "batch_size": ({"type": "integer", "minimum": 1}, "examples per step (over all processes)"),
    "resize": ({"type": ["integer", "null"], "minimum": 1}, "resize the images to this side length; null keeps them"),
    "optimizer": ({"enum": ["sgd", "momentum", "adamw"]}, "sgd (plain, as the course), momentum (0.9, Nesterov) or adamw"),
    "momentum": ({"type": "number", "minimum": 0, "maximum": 1}, "momentum for optimizer momentum"),
    "weight_decay": ({"type": "number", "minimum": 0}, "L2 penalty (decoupled for adamw)"),
    "schedule": ({"enum": ["constant", "cosine", "onecycle"]}, "learning-rate schedule over the run"),
    "warmup_epochs": ({"type": "number", "minimum": 0}, "linear warm-up length for cosine"),
    "label_smoothing": ({"type": "number", "minimum": 0, "maximum": 1}, "cross-entropy label smoothing"),
    "aux_weight": ({"type": "number", "minimum": 0}, "loss weight of each auxiliary output (a network's outputs "
                   "after the first; GoogLeNet's paper: 0.3)"),
    "init": ({"enum": ["xavier", "default"]}, "xavier: xavier_uniform_ on conv/linear weights (the course); "
             "default: PyTorch's own initialization"),
    "data": ({"type": "string"}, "data set: fashion-mnist, mnist, cifar10, folder:PATH or synthetic"),
    "augment": ({"type": "array", "items": {"enum": ["flip", "crop"]}},
                "train-time augmentations done on the device: flip (horizontal), crop (random 2-pixel shifts)"),
    "eval_batch_size": ({"type": "integer", "minimum": 1}, "batch size for evaluation"),
    "seed": ({"type": "integer"}, "random seed"),
    "amp": ({"type": ["boolean", "null"]}, "bf16 autocast; null (default): on CUDA only"),
    "val_split": ({"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                  "fraction of the training set held out for validation (fixed, seeded); best weights are chosen "
                  "on it"),
    "patience": ({"type": "integer", "minimum": 0},
                 "early stopping: epochs without a better validation accuracy (0: off)"),
}

RESERVED = frozenset(COMPOSITES) | frozenset(MODIFIERS) | {"input", "output"}


def is_expression(value: object) -> bool:
    """True for strings with a `$` that is not part of a `$$` escape: a value `netspec.passes.expr` evaluates."""
    return isinstance(value, str) and "$" in value.replace("$$", "")


# Names an item cannot have: a block of the compiled model is a torch module, whose children are attributes, so
# a child named `forward`, `training` or `code` would shadow the module's own (PyTorch refuses it, at compile
# time).  The public attributes of nn.Module, nn.Sequential and torch.fx.GraphModule (tests/test_blocks.py
# checks this set against the installed torch); names starting with `_` are PyTorch's private ones.
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "add_submodule", "append", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "code", "compile", "cpu", "cuda", "delete_all_unused_submodules", "delete_submodule", "double",
    "dump_patches", "eval", "extend", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "graph", "half", "insert", "ipu", "load_state_dict", "meta", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "pop", "print_readable",
    "recompile", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook",
    "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "shape_env",
    "share_memory", "state_dict", "to", "to_empty", "to_folder", "train", "training", "type", "xpu", "zero_grad",
})


def module_attribute(name: str) -> bool:
    """Whether an item named `name` would shadow an attribute of the torch module holding it."""
    return name in MODULE_ATTRIBUTES or name.startswith("_")

