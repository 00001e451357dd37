"""`netspec eval` and `netspec export`: a finished (or interrupted) run's network, rebuilt from its checkpoint.

A checkpoint carries the spec's text and params, so `best.pt` alone is enough: the spec is written to a
temporary folder, compiled, and the weights loaded with every key and shape checked.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from netspec.ir import ShapedNetwork
from netspec.train import checkpoint

from netspec.train import distributed
from netspec.train.data import load_dataset
from netspec.train.recipe import from_json
from netspec.train.rundir import SpecFiles

FORMATS = (".safetensors", ".onnx", ".py", ".pt")


class ExportError(Exception):
    """An export that cannot be made here (a missing optional package, a place that cannot be written): exit 1."""


class ExportRefused(ExportError):
    """An export the command should not ask for (an unknown suffix, a target that is its own input): exit 2."""


# What a run folder holds (netspec.train.rundir); `export -o` never overwrites one of them.
RUN_FILES = ("last.pt", "best.pt", "model.safetensors", "metrics.jsonl", "metrics.csv", "run.json", "summary.txt",
             "curves.png", "diagram.svg", "spec", "tensorboard", "confusion.png", "confusion.json")


@dataclass(frozen=True)
class Loaded:
    model: nn.Module
    shaped: ShapedNetwork
    saved: Mapping
    path: Path


def checkpoint_of(ref: str | Path) -> Path:
    """A checkpoint file, or a run folder's best.pt (its last.pt when no epoch has finished)."""
    return checkpoint.file_of(ref)


def load_run(ref: str | Path, max_params: int | None = None) -> Loaded:
    from netspec.backends.fx import to_graph_module
    from netspec.pipeline import shaped_network

    path = checkpoint_of(ref)
    saved = checkpoint.load(path, needs=("model", "spec", "recipe"))
    spec = SpecFiles.from_json(saved["spec"])
    with tempfile.TemporaryDirectory(prefix="netspec-spec-") as folder:
        shaped = shaped_network(spec.write(Path(folder)), spec.params)
    model = to_graph_module(shaped, max_params)
    checkpoint.load_into(model, saved["model"], str(path))
    return Loaded(model.eval(), shaped, saved, path)


def evaluate_run(ref: str | Path, data: str | None = None, data_dir: str | None = None, device: str = "auto",
                 batch_size: int | None = None, subset: int | None = None, download: bool = True,
                 max_params: int | None = None, out: str | Path | None = None) -> dict:
    """Test loss, top-1 (`test_acc`), top-5, per-class accuracy and the confusion matrix of a run's network on
    its data set's test split (or `data`'s); writes confusion.png and confusion.json into `out` (default: the
    checkpoint's folder)."""
    from netspec.train.evaluation import measure, write_confusion
    from netspec.train.recipe import PYTHON_DATA, RecipeError
    from netspec.train.rundir import write_json

    loaded = load_run(ref, max_params)
    recipe = from_json(loaded.saved["recipe"])
    if (data or recipe.data) == PYTHON_DATA:
        raise RecipeError("this run trained on data given from Python; name a data set with --data, or evaluate "
                          "it from Python")
    shape = tuple(loaded.shaped.network.input_shape)
    dataset = load_dataset(data or recipe.data, shape, data_dir, download).subset(subset)
    outputs = tuple(loaded.shaped.output_shape)
    if outputs != (len(dataset.classes),):
        raise RecipeError(f"{dataset.name} has {len(dataset.classes)} classes but the network outputs "
                          f"{list(outputs)}; evaluate it on a data set with as many classes")
    where = distributed.pick_device(device, distributed.Dist())
    amp, channels_last = trained_precision(loaded)
    images, labels = dataset.test_x.to(where), dataset.test_y.to(where)
    model = loaded.model.to(where, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    found = measure(model, images, labels, dataset.classes, shape[1:], batch_size or recipe.eval_batch_size,
                    channels_last, amp)
    state = loaded.saved.get("state") or {}
    folder = Path(out) if out is not None else loaded.path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot write {folder}: {err.strerror or err}") from None
    result = {"checkpoint": str(loaded.path), "data": dataset.name, "examples": found["examples"],
              "test_loss": found["loss"], "test_acc": found["top1"], "top5": found["top5"],
              "epoch": state.get("epoch"), "device": str(where), "amp": amp, "channels_last": channels_last,
              "per_class": found["per_class"], "classes": found["classes"], "confusion": found["confusion"]}
    write_json(folder / "confusion.json", {k: result[k] for k in ("checkpoint", "data", "epoch", "classes",
                                                                    "confusion", "per_class")})
    picture = write_confusion(folder / "confusion.png", found["confusion"], dataset.classes,
                              f"{loaded.shaped.name} on {dataset.name} (test, {found['examples']:,} examples)")
    result["files"] = [str(folder / "confusion.json")] + ([str(picture)] if picture else [])
    return result


def trained_precision(loaded: Loaded) -> tuple[bool, bool]:
    """(amp, channels_last) as the run trained, so that eval reproduces the accuracy it recorded: from the
    checkpoint, else the run.json beside it (checkpoints before netspec recorded it), else the recipe's amp."""
    saved = loaded.saved.get("precision")
    if isinstance(saved, dict) and isinstance(saved.get("amp"), bool) and isinstance(saved.get("channels_last"), bool):
        return saved["amp"], saved["channels_last"]
    try:
        recorded = json.loads((loaded.path.parent / "run.json").read_text(encoding="utf-8"))
        if isinstance(recorded.get("amp"), bool) and isinstance(recorded.get("channels_last"), bool):
            return recorded["amp"], recorded["channels_last"]
    except (OSError, ValueError, AttributeError):
        pass
    amp = loaded.saved["recipe"].get("amp") is True
    return amp, amp


def export_run(ref: str | Path, out: Path, max_params: int | None = None) -> list[Path]:
    """Writes `out` in the format its suffix names; returns every file written."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ExportRefused(f"-o {out}: the suffix picks the format: {', '.join(FORMATS)}")
    targets = [out, out.with_suffix(".safetensors")] if suffix == ".py" else [out]
    refuse_own_files(checkpoint_of(ref), targets)
    for target in targets:
        if target.is_dir():
            raise ExportError(f"cannot write {target}: it is a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot write {out}: {err.strerror or err}") from None
    loaded = load_run(ref, max_params)
    weights = loaded.model.state_dict()
    meta = {"spec": loaded.shaped.name, "params": dict(loaded.saved["spec"].get("params") or {}),
            "source": str(loaded.path)}
    if suffix == ".safetensors":
        return [checkpoint.save_safetensors(out, weights, meta)]
    if suffix == ".pt":
        return [checkpoint.atomic_write(out, lambda s: torch.save(checkpoint.plain_state(weights), s))]
    if suffix == ".py":
        return export_python(loaded, out, meta)
    return [export_onnx(loaded, out)]


def refuse_own_files(source: Path, targets: list[Path]) -> None:
    """ExportRefused when a target is the checkpoint being read, or one of the files of its run folder (the
    folder that holds it): `export RUN -o RUN/last.pt` once overwrote the run's own checkpoint."""
    folder = source.parent.resolve()
    for target in targets:
        resolved = target.resolve()
        if resolved == source.resolve() or (target.exists() and source.exists() and os.path.samefile(target, source)):
            raise ExportRefused(f"-o {target}: that is the checkpoint being exported; choose another file")
        inside = resolved.relative_to(folder).parts if folder in resolved.parents else ()
        if inside and inside[0] in RUN_FILES and (folder / "run.json").is_file():
            raise ExportRefused(f"-o {target}: that is one of the run folder's own files; choose another name")


def export_python(loaded: Loaded, out: Path, meta: Mapping) -> list[Path]:
    """The standalone PyTorch source (imports only torch) and the weights beside it as `<stem>.safetensors`."""
    from netspec.backends.fx import class_name
    from netspec.backends.pysource import quoted, to_python_source

    weights_file = out.with_suffix(".safetensors")
    name = class_name(loaded.shaped.name)
    usage = (f"\n# Load the trained weights (written beside this file by `netspec export`):\n"
             f"#     from safetensors.torch import load_file\n"
             f"#     model = {name}(); model.load_state_dict(load_file({quoted(weights_file.name)})); model.eval()\n")
    source = to_python_source(loaded.shaped).rstrip("\n") + "\n" + usage
    written = checkpoint.atomic_write(out, lambda s: s.write(source.encode("utf-8")))
    return [written, checkpoint.save_safetensors(weights_file, loaded.model.state_dict(), meta)]


def export_onnx(loaded: Loaded, out: Path) -> Path:
    try:
        import onnx  # noqa: F401  (torch.onnx needs it; checked first for a clear message)
        import onnxscript  # noqa: F401
    except ImportError:
        raise ExportError("ONNX export needs the `onnx` and `onnxscript` packages, which are not installed: "
                          "pip install 'netspec[onnx]' (or pip install onnx onnxscript); "
                          "-o model.safetensors and -o model.py work without them")
    example = torch.zeros(1, *loaded.shaped.network.input_shape)
    batch = torch.export.Dim("batch", min=1)
    try:
        torch.onnx.export(loaded.model, (example,), str(out), input_names=["x"], output_names=["logits"],
                          dynamic_shapes={"x": {0: batch}}, dynamo=True)
    except Exception as err:  # the exporter's own failures (unsupported op, version skew) are not netspec bugs
        raise ExportError(f"torch.onnx.export failed: {type(err).__name__}: {err}")
    return out
