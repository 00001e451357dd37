"""Where a run's metric records go: metrics.jsonl (every field), metrics.csv (the same records, fixed columns) and,
when the `tensorboard` package is installed (`pip install 'netspec[tensorboard]'`), TensorBoard event files in
`tensorboard/`.  Rank 0 only.

A record is {"kind": "step" | "epoch" | "test", "epoch", "step", …}.  On resume the records after the
checkpoint's step are dropped from both files (the resumed run logs them again) and TensorBoard is told to purge
its events from that step on (`purge_step`), so every log reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Mapping

from netspec.train import files, rundir

CSV_COLUMNS = ("kind", "epoch", "step", "loss", "step_loss", "train_acc", "val_loss", "val_acc", "test_loss",
               "test_acc", "lr", "examples", "examples_per_s", "train_time")
TENSORBOARD_DIR = "tensorboard"
TENSORBOARD_MISSING = ("TensorBoard logging is off: the `tensorboard` package is not installed "
                       "(pip install 'netspec[tensorboard]')")
# metrics.jsonl key → TensorBoard tag, per kind of record
TB_TAGS = {"step": {"step_loss": "loss/train_step", "lr": "lr", "examples_per_s": "throughput/examples_per_s"},
           "epoch": {"loss": "loss/train", "val_loss": "loss/val", "test_loss": "loss/test", "train_acc": "acc/train",
                     "val_acc": "acc/val", "test_acc": "acc/test", "examples_per_s": "throughput/epoch_examples_per_s"},
           "test": {"test_loss": "final/test_loss", "test_acc": "final/test_acc"}}


def csv_row(record: Mapping) -> str:
    out = io.StringIO()
    csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n").writerow(
        {k: record.get(k, "") for k in CSV_COLUMNS})
    return out.getvalue()


CSV_HEADER = ",".join(CSV_COLUMNS) + "\n"


class MetricLog:
    """Appends each record to every log; `records` holds them all (for the curves)."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.run_dir = run_dir
        self.jsonl, self.csv = run_dir / "metrics.jsonl", run_dir / "metrics.csv"
        self.note: str | None = None
        if resume_step is None:
            self.records: list[dict] = []
            files.write_file(self.csv, CSV_HEADER.encode("utf-8"))
        else:
            self.records, self.note = rundir.truncate_metrics(self.jsonl, resume_step)
            files.write_file(self.csv, (CSV_HEADER + "".join(csv_row(r) for r in self.records)).encode("utf-8"))
        self.tensorboard = open_tensorboard(run_dir / TENSORBOARD_DIR, resume_step)

    def log(self, record: dict) -> None:
        rundir.append_metric(self.jsonl, record)
        files.append_line(self.csv, csv_row(record))
        self.records.append(record)
        if self.tensorboard is not None:
            for key, tag in TB_TAGS.get(record.get("kind"), {}).items():
                if isinstance(record.get(key), (int, float)):
                    self.tensorboard.add_scalar(tag, record[key], record["step"])
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None


def tensorboard_available() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def open_tensorboard(folder: Path, resume_step: int | None):
    """A SummaryWriter on `folder`, or None when the `tensorboard` package is missing."""
    if not tensorboard_available():
        return None
    from torch.utils.tensorboard import SummaryWriter

    # purge_step: events at and after it, written before an interruption, are hidden by TensorBoard
    return SummaryWriter(str(folder), purge_step=None if resume_step is None else resume_step + 1)
