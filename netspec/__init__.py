"""netspec: convolutional networks as validated, shape-checked YAML, compiled to PyTorch.

    import netspec
    model = netspec.load("googlenet")            # a torch.nn.Module built with torch.fx, its blocks as submodules
    print(netspec.summary("specs/resnet18.yaml")) # rows and totals, printed as `netspec summary`; no torch
    shaped = netspec.shaped_network("googlenet")  # the IR every command starts from (netspec.ir)
    result = netspec.train("bn_lenet", epochs=2)  # a training run (netspec.train.api), on your data too
    netspec.diff("imagenet/resnet18", "imagenet/resnet34")    # blocks, nodes, counts, state_dict keys
    netspec.compat("runs/old/best.pt", "my_edit.yaml")        # which tensors of the old weights load

A *spec* is a spec file (a path), a built-in name (`imagenet/resnet50`), the spec's YAML text, the spec as a
dict, or an already shaped network (`netspec.ShapedNetwork`, not parsed again).  A `str` is YAML text when it
holds a line break or its first non-blank character is `{` (a flow mapping); otherwise it names a file or a
built-in spec (a `pathlib.Path` always names a file).  Errors in text are located as `<string>:line:col`, in a
dict as `<dict>` with the JSON pointer of the value.  `load`, `validate`, `summary`, `draw`, `emit_python`,
`shaped_network`, `load_spec` and `diff` take any of them; `compat` also takes weights (below).

`load_weights` loads a state_dict strictly (or raises `netspec.WeightsError`, whose .report is a
`netspec.Compat`); `load_matching` loads what fits and returns the `netspec.Compat`, as `train --init-from` does.
Failures: `netspec.SpecErrors` (located `netspec.SpecError`s with a `netspec.Mark`), `netspec.ModelTooLarge`,
`netspec.WeightsFileError`.  Only `load`, `emit_python`, `load_weights`, `load_matching`, `diff` and `compat`
import torch (lazily); `netspec.__version__` is the package's version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence, Union

from netspec.backends.compat import Compat
from netspec.backends.diff import SpecDiff
from netspec.backends.limits import ModelTooLarge
from netspec.backends.weights import WEIGHT_SUFFIXES, WeightsError, WeightsFileError
from netspec.errors import Mark, SpecError, SpecErrors
from netspec.frontend.syntax import Spec as ParsedSpec
from netspec.ir import ShapedNetwork
from netspec import pipeline
from netspec.passes.outputs import select_outputs
from netspec import train  # the package is callable: netspec.train(spec, train_data=…, …) (no torch at import)

__version__ = "0.1.0"
__all__ = ["load", "load_spec", "shaped_network", "ShapedNetwork", "validate", "summary", "draw", "emit_python",
           "diff", "compat", "train", "load_weights", "load_matching", "Compat", "SpecDiff", "Mark", "SpecError",
           "SpecErrors", "ModelTooLarge", "WeightsError", "WeightsFileError", "is_spec_text", "__version__"]
Spec = Union[str, Path, Mapping, ShapedNetwork]  # a file, a built-in name, YAML text, a dict, or a shaped network


def is_spec_text(spec: str) -> bool:
    """Whether a `str` given as a spec is YAML text (it holds a line break, or starts with `{` after blanks)
    rather than the name of a file or built-in spec."""
    return "\n" in spec or "\r" in spec or spec.lstrip().startswith("{")


def _documents(spec):
    if isinstance(spec, Mapping):
        return pipeline.read_data(spec)
    if isinstance(spec, str) and is_spec_text(spec):
        return pipeline.read_text(spec)
    if isinstance(spec, (str, Path)):
        return pipeline.read(spec)
    raise TypeError(f"a spec is a path, a built-in name, YAML text, a dict or a ShapedNetwork, not "
                    f"{type(spec).__name__}")


def shaped_network(spec: Spec, overrides: Mapping[str, object] | None = None) -> ShapedNetwork:
    """Everything up to the shape-checked network (the IR, netspec.ir), `expect:` included at the spec's own
    params; `overrides` set params.  Raises SpecErrors.  No torch."""
    if isinstance(spec, ShapedNetwork):
        if overrides:
            raise TypeError("params apply to a spec, not to an already shaped network")
        return spec
    return pipeline.shape_documents(_documents(spec), overrides)


def load_spec(spec: Spec, overrides: Mapping[str, object] | None = None) -> ParsedSpec:
    """The validated, parsed spec (the IR's first stage, netspec.frontend.syntax.Spec).  Raises SpecErrors."""
    from netspec.frontend import validate as checks

    return checks.validate(_documents(spec), overrides)


def _shaped(spec: Spec, params: dict) -> ShapedNetwork:
    return shaped_network(spec, params)


def load(spec: Spec, /, *, max_params: int | None = None, outputs: Sequence[str] | None = None, **params):
    """Builds the network a spec describes as a torch.nn.Module (a torch.fx GraphModule whose blocks are
    modules of their own: nn.Sequential for chains, GraphModules named after their templates otherwise);
    `params` override the spec's params.

    `outputs`: a feature extractor instead, as timm's `features_only`: the module returns the tensors of these
    nodes (top-level names like `layer1`, or dotted node names) as a list, in this order, and holds only what they
    need.  An unknown or repeated name raises SpecErrors.

    `max_params`: the most parameters to build; more raises netspec.ModelTooLarge before anything is allocated.
    None (the default): 2·10⁹, or fewer when the available memory holds fewer at 4 bytes each.  It is
    keyword-only and always means the limit: a spec param that happens to be named `max_params` is set through
    `load(netspec.shaped_network(spec, {"max_params": …}))`."""
    from netspec.backends.fx import to_graph_module

    shaped = _shaped(spec, params)
    if outputs is not None:
        shaped = select_outputs(shaped, outputs)
    return to_graph_module(shaped, max_params)


def validate(spec: Spec, **params) -> None:
    """Raises SpecErrors listing every mistake in the spec; returns None when it is valid.  No torch."""
    _shaped(spec, params)


def summary(spec: Spec, depth: int | None = None, **params):
    """Per-node rows, block subtotals and totals (netspec.backends.summary.Summary; `str()` of it, or `print`, is
    the table `netspec summary` prints, `.to_json()` its `--json`).  No torch."""
    from netspec.backends.summary import summarize

    return summarize(_shaped(spec, params), depth)


def draw(spec: Spec, depth: int | None = None, fold: bool = True, rankdir: str = "TB", legend: bool = False,
         **params):
    """The network as a `graphviz.Digraph` (`.source` is the DOT; `.render()`/`.pipe()` make images with
    Graphviz's `dot`).  `depth`: draw blocks nested deeper than this as one box each; `fold`: draw consecutive
    identical blocks once, marked ×N; `rankdir`: TB or LR.  No torch."""
    from netspec.backends.draw.dot import draw_graph

    return draw_graph(_shaped(spec, params), depth=depth, fold=fold, rankdir=rankdir, legend=legend)


def emit_python(spec: Spec, **params) -> str:
    """Standalone PyTorch source (imports only torch) with the same state_dict keys as `load`."""
    from netspec.backends.pysource import to_python_source

    return to_python_source(_shaped(spec, params))


def load_weights(model, state_dict, rename=None, skip=()):
    """Loads a state_dict (or a file saved with torch.save) into a compiled model strictly: every tensor used
    once, same shapes; raises netspec.WeightsError listing every problem (its `.report`: netspec.Compat, the
    report `netspec compat` prints, with suggested renames).  The specs in
    imagenet/ have torchvision's keys, so `load_weights(model, torchvision_model.state_dict())` needs no name map;
    `rename` ({incoming prefix: model prefix}) and `skip` (model modules to leave as they are) serve other
    sources."""
    from netspec.backends.weights import load_weights as load

    return load(model, state_dict, rename, skip)


def load_matching(model, state_dict, rename=None, skip=()) -> Compat:
    """Loads every tensor of `state_dict` (a mapping, or a file saved with torch.save) whose name (after
    `rename`) and shape match one of `model`'s, leaves the others as initialized, and returns the report
    (`netspec.Compat`: `loaded`, `new`, `reshaped`, `dropped`, suggested `renames`; `str(report)` is `netspec
    compat`'s text).  What fine-tuning an edited network starts from."""
    from netspec.backends.weights import load_matching as load

    return load(model, state_dict, rename, skip)


def diff(a: Spec, b: Spec, depth: int = 0, keys: bool = True) -> SpecDiff:
    """Spec `a` against spec `b`, as `netspec diff`: per block (nested `depth` levels deep) the nodes added,
    removed, changed and reshaped, Δparams, ΔMACs and output shapes; `keys`: also which state_dict keys keep
    their name and shape (imports torch, allocates no tensor).  `.status` maps every node name to its status,
    `.to_json()` is `--json`'s document, `str()` the table."""
    from netspec.backends.diff import diff_networks

    return diff_networks(shaped_network(a), shaped_network(b), depth, keys=keys)


def compat(old, new, rename=None, skip=()) -> Compat:
    """Which tensors of `old` load into `new` (same name after `rename`, same shape), as `netspec compat`.  Each
    side is a spec (see above), a model (anything with `.state_dict()`), a state_dict (a mapping of tensors), or
    a weights file (a path ending .pt, .pth, .bin, .ckpt or .safetensors, read without running code).  Imports
    torch."""
    from netspec.backends.compat import compare

    return compare(_state_shapes(new), _state_shapes(old), rename, skip)


def _state_shapes(side) -> dict[str, tuple[int, ...]]:
    from netspec.backends.weights import shapes_of

    if hasattr(side, "state_dict") and callable(side.state_dict):
        return shapes_of(side.state_dict())
    if isinstance(side, Mapping) and all(hasattr(v, "shape") for v in side.values()):
        return shapes_of(side)
    if isinstance(side, (str, Path)) and not (isinstance(side, str) and is_spec_text(side)) \
            and Path(side).suffix.lower() in WEIGHT_SUFFIXES:
        from netspec.train.checkpoint import CheckpointError, load_weights as read

        try:
            return shapes_of(read(Path(side)))
        except CheckpointError as err:
            raise WeightsFileError(str(err)) from None
    from netspec.backends.fx import state_shapes

    return state_shapes(shaped_network(side))
