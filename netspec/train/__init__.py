"""Training: `netspec train`, `eval` and `export` (see docs/training.md), and `netspec.train(spec, …)` from Python.

    run.py         a run from start to end (`run.start`, `run.resume`)
    restore.py     what a resume puts back: weights, optimizer, random states (each rank's under DDP)
    loop.py        the training loop: steps, evaluation, NaN and stop checks
    data.py        data sets as whole uint8 tensors; batches made on the device
    datasets.py    where data comes from: the search order, verified downloads (no torch)
    recipe.py      the recipe (spec `train:` + flags) and run options (no torch)
    checkpoint.py  atomic checkpoints, safetensors, weights loading (no pickle)
    distributed.py torchrun/DDP: process group, sharding, all-reduce
    devices.py     which device and precision a run uses (cpu, cuda, cuda:N, mps; bf16 where native)
    api.py         netspec.train(spec, train_data=…, val_data=…): a run from Python, on your own data too
    loggers.py     metrics.jsonl, metrics.csv, TensorBoard (when installed)
    evaluation.py  eval's top-1/top-5, per-class accuracy, confusion matrix (and confusion.png)
    rundir.py      the run folder (no torch); plots.py: curves.png
    files.py       how a run folder's files are opened: no symbolic links, atomic replaces, a lock (no torch)
    export.py      eval and export of a finished run

The commands are netspec/cli/train.py (no torch at import).

Importing this package imports nothing heavy; the modules that need torch import it themselves.
"""

import sys as _sys
import types as _types


class _CallablePackage(_types.ModuleType):
    """Makes the package itself the function `netspec.train(spec, …)` (netspec.train.api.train), while
    `netspec.train.run` and the other modules stay where they are: a function named `train` in netspec/__init__.py
    would be replaced by this package the moment any of its modules is imported."""

    def __call__(self, *args, **kwargs):
        from netspec.train.api import train

        return train(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
