"""`netspec.train(spec, train_data=…, val_data=…)`: a training run from Python, on your own data or a built-in set.

Data given here — a `torch.utils.data.Dataset` of (image, label) pairs, or tensors `(images, labels)` — is read
once into whole tensors (images (N, C, H, W) or (N, H, W), uint8 in [0, 255] or float as they are; labels (N,)
integers) and then trained on like the built-in sets: moved once to the device, batched by index.  A Dataset is
therefore read in full (at most MAX_EXAMPLES examples); one that does not fit in memory belongs in a folder
(`data="folder:PATH"`).  The run folder is the same as the CLI's.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from netspec.train.data import DataSet, checked
from netspec.train.datasets import DataError
from netspec.train.recipe import PYTHON_DATA, Recipe, RunOptions

MAX_EXAMPLES = 10_000_000   # a Dataset read whole: past this it is refused, not read for hours


def train(spec: Any = None, train_data: Any = None, val_data: Any = None, test_data: Any = None, *,
          classes: Sequence[str] | None = None, resume: str | Path | None = None, ui: Any = None,
          params: Mapping[str, object] | None = None, **settings: Any):
    """Trains `spec` (a file, a built-in name) and returns netspec.train.run.Result (`.run_dir`, `.history`,
    `.model` with the kept weights, `.test`).

    `train_data`, `val_data`, `test_data`: a Dataset or an (images, labels) pair each; without `train_data` the
    recipe's data set is used (`data="fashion-mnist"`, …).  `val_data` is the validation set (the best epoch on it
    is kept); `val_split=0.1` holds out part of `train_data` instead.  Without `test_data` nothing is tested.
    `classes`: the class names (default: the Dataset's `classes`, else "0", "1", …).
    `settings`: any recipe key (`epochs=2`, `lr=0.1`, …) and any RunOptions field (`device="cpu"`, `out="runs"`,
    `name=…`, `subset=…`, `test_every_epoch=True`, …).  `resume=RUN_DIR` continues a run (pass its data again
    when it trained on data given here; `epochs=` may raise its length)."""
    from netspec.train import run

    recipe_keys = {f.name for f in fields(Recipe)}
    option_keys = {f.name for f in fields(RunOptions)} - {"params"}
    unknown = sorted(set(settings) - recipe_keys - option_keys)
    if unknown:
        raise TypeError(f"netspec.train() got an unexpected setting {unknown[0]!r}; recipe keys: "
                        f"{', '.join(sorted(recipe_keys))}; run options: {', '.join(sorted(option_keys))}")
    flags = {k: v for k, v in settings.items() if k in recipe_keys}
    options = RunOptions(**{"progress": False, **{k: v for k, v in settings.items() if k in option_keys}},
                         params=dict(params or {}))
    data = None
    if train_data is not None:
        if "data" in flags:
            raise TypeError("give train_data or data=…, not both")
        data = data_set(train_data, val_data, test_data, classes)
        flags["data"] = PYTHON_DATA
    elif val_data is not None or test_data is not None:
        raise TypeError("val_data and test_data go with train_data")
    if resume is not None:
        if spec is not None or set(flags) - {"epochs", "data"}:
            raise TypeError("resume keeps the run's spec and recipe; only epochs= may change")
        return run.resume(Path(resume), options, flags.get("epochs"), ui, data)
    if spec is None:
        raise TypeError("netspec.train() needs a spec (or resume=RUN_DIR)")
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"netspec.train() takes a spec file or a built-in name, not {type(spec).__name__}")
    return run.start(str(spec), flags, options, ui, data)


def data_set(train: Any, val: Any = None, test: Any = None, classes: Sequence[str] | None = None) -> DataSet:
    """A DataSet of what was handed over; DataError (one line) for data that cannot be trained on."""
    train_x, train_y = tensors(train, "train_data")
    val_x, val_y = tensors(val, "val_data") if val is not None else (None, None)
    if test is not None:
        test_x, test_y = tensors(test, "test_data")
    else:
        test_x, test_y = train_x[:0], train_y[:0]
    for name, x in (("val_data", val_x), ("test_data", test_x)):
        if x is not None and len(x) and tuple(x.shape[1:]) != tuple(train_x.shape[1:]):
            raise DataError(f"{name}: images of shape {list(x.shape[1:])}, but train_data's are "
                            f"{list(train_x.shape[1:])}")
    if classes is None:
        classes = getattr(train, "classes", None)
    if classes is None:
        highest = max(int(y.max()) for y in (train_y, val_y, test_y) if y is not None and len(y))
        classes = [str(i) for i in range(highest + 1)]
    return checked(DataSet(PYTHON_DATA, tuple(str(c) for c in classes), train_x, train_y, test_x, test_y,
                           val_x, val_y))


def tensors(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, C, H, W), labels (N,) int64) from an (images, labels) pair or a Dataset of pairs."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not _is_pair(data[0]):
        images, labels = (_as_tensor(part, name) for part in data)
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (str, bytes)):
        images, labels = _read_dataset(data, name)
    else:
        raise DataError(f"{name}: expected a torch.utils.data.Dataset of (image, label) pairs or a pair "
                        f"(images, labels) of tensors, got {type(data).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(1)                       # (N, H, W): one channel
    if images.dim() != 4:
        raise DataError(f"{name}: images must be (N, C, H, W) or (N, H, W), got shape {list(images.shape)}")
    if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise DataError(f"{name}: labels must be whole numbers of shape (N,), got {labels.dtype} of shape "
                        f"{list(labels.shape)}")
    if len(images) != len(labels):
        raise DataError(f"{name}: {len(images):,} images but {len(labels):,} labels")
    if not len(labels):
        raise DataError(f"{name}: no examples")
    if images.dtype != torch.uint8:
        images = images.float()
        if not bool(torch.isfinite(images).all()):
            raise DataError(f"{name}: the images hold NaN or infinite values")
    return images.contiguous(), labels.long()


def _is_pair(item: Any) -> bool:
    """Whether `item` is itself one (image, label) example (a list of pairs is not an (images, labels) pair)."""
    return isinstance(item, (tuple, list)) and len(item) == 2 and not hasattr(item[1], "__len__")


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value) if not isinstance(value, torch.Tensor) else value.detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise DataError(f"{name}: cannot be read as a tensor ({err})") from None


def _read_dataset(dataset: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(dataset)
    if n > MAX_EXAMPLES:
        raise DataError(f"{name}: {n:,} examples; a Dataset is read whole into memory, at most {MAX_EXAMPLES:,} "
                        "(put larger data in image folders: data='folder:PATH')")
    images, labels = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DataError(f"{name}[{i}]: expected an (image, label) pair, got {type(item).__name__}")
        image = _as_tensor(_pixels(item[0]), f"{name}[{i}]")
        if images and image.shape != images[0].shape:
            raise DataError(f"{name}[{i}]: an image of shape {list(image.shape)}, but the first is "
                            f"{list(images[0].shape)}; every image must have the same shape")
        images.append(image)
        labels.append(int(item[1]))
    if not images:
        raise DataError(f"{name}: no examples")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _pixels(image: Any) -> Any:
    """A PIL image as a (C, H, W) uint8 array; anything else as it is."""
    if hasattr(image, "getbands") and hasattr(image, "tobytes"):
        import numpy

        array = torch.from_numpy(numpy.asarray(image).copy())
        return array.unsqueeze(0) if array.dim() == 2 else array.permute(2, 0, 1)
    return image
