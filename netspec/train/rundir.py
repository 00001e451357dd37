"""The run directory `runs/<spec>-<timestamp>/` and the spec it keeps.  No torch.

    spec/…            the spec file and the block libraries it imports, as read (a run rebuilds from these)
    run.json          spec name, params, recipe, options, command line, versions, device, world size
    metrics.jsonl     one JSON object per line: {"kind": "step" | "epoch" | "test", …}; metrics.csv the same
    tensorboard/      TensorBoard event files, when the `tensorboard` package is installed
    curves.png        loss (step-level and per epoch), accuracy and learning rate (netspec.train.plots)
    summary.txt       the network's table, the recipe, how the kept epoch was chosen and the results
    diagram.svg       when Graphviz's `dot` is installed
    last.pt, best.pt  checkpoints (atomic); model.safetensors: the kept weights (best on validation, else last)
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from netspec.frontend.yaml_source import Document
from netspec.ir import ShapedNetwork
from netspec.train import files
from netspec.train.files import RunDirError


class SpecFilesError(ValueError):
    """Recorded spec files that cannot be used: a name that leaves the spec's folder, a value of the wrong type."""


@dataclass(frozen=True)
class SpecFiles:
    """A spec and the libraries it imports, as text, by path relative to the spec's folder.  Checked when made
    (a checkpoint is read back through `from_json`): every name relative, inside the folder, `main` among them;
    so a crafted checkpoint can make netspec neither write nor read a file outside the bundle."""

    main: str
    files: Mapping[str, str]
    params: Mapping[str, object]

    def __post_init__(self) -> None:
        if not isinstance(self.files, Mapping) or not self.files:
            raise SpecFilesError("`files` must map file names to text")
        for rel, text in self.files.items():
            check_relative_name(rel)
            if not isinstance(text, str):
                raise SpecFilesError(f"the text of {rel!r} is not a string")
        check_relative_name(self.main)
        if self.main not in self.files:
            raise SpecFilesError(f"the main spec {self.main!r} is not among its files")
        if not isinstance(self.params, Mapping) or not all(isinstance(k, str) for k in self.params):
            raise SpecFilesError("`params` must map names to values")

    def to_json(self) -> dict:
        return {"main": self.main, "files": dict(self.files), "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: object) -> "SpecFiles":
        if not isinstance(data, Mapping):
            raise SpecFilesError("the spec record is not a mapping")
        params = data.get("params")
        return cls(data.get("main"), data.get("files"), {} if params is None else params)  # type: ignore[arg-type]

    def write(self, folder: Path) -> Path:
        """Writes every file under `folder`; returns the main spec's path there."""
        for rel, text in self.files.items():
            target = (folder / rel).resolve()
            if folder.resolve() not in target.parents:  # a second guard: the names were checked when made
                raise SpecFilesError(f"spec file path {rel!r} leaves the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            files.write_file(target, text.encode("utf-8"))
        return folder / self.main


def check_relative_name(rel: object) -> None:
    """A file name relative to the spec's folder: not absolute, no `..`, `.` or empty part, no NUL or backslash."""
    if not isinstance(rel, str) or not rel:
        raise SpecFilesError(f"a spec file name must be a non-empty string, got {rel!r}")
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or "\0" in rel or any(p in ("", ".", "..") for p in parts):
        raise SpecFilesError(f"spec file name {rel!r} leaves the spec's folder (names must be relative, without "
                             "`..`)")


def spec_files_of(documents: list[Document], params: Mapping[str, object]) -> SpecFiles:
    """The files a spec loads (its document first); libraries outside the spec's folder are the built-in ones,
    found again by name."""
    base = documents[0].path.parent
    files = {}
    for doc in documents:
        if base in doc.path.parents:
            files[str(doc.path.relative_to(base))] = doc.path.read_text(encoding="utf-8")
    return SpecFiles(str(documents[0].path.relative_to(base)), files, dict(params))


def check_run_name(name: str) -> None:
    """RunDirRefused unless `name` is one plain folder name (it must not leave `--out`)."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or len(name) > 200:
        raise files.RunDirRefused(f"--name {name!r}: a run name is one folder name (no `/`, not `.` or `..`, at most "
                             "200 characters)")


def create(root: Path, name: str, exact: str | None = None) -> Path:
    """A new, empty run folder: `root/exact` (RunDirRefused when it exists), or `name-TIME`.  `mkdir` without
    exist_ok is atomic, so two runs started in the same second get `name-TIME` and `name-TIME-2` instead of
    sharing one.  RunDirError when `root` cannot hold one."""
    root = Path(root)
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if exact is not None:
            check_run_name(exact)
            try:
                (root / exact).mkdir()
            except FileExistsError:
                raise files.RunDirRefused(f"run folder {root / exact} exists; choose another --name, or continue "
                                          f"it with --resume {root / exact}") from None
            return root / exact
        for attempt in range(1, 10_000):
            path = root / (base if attempt == 1 else f"{base}-{attempt}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as err:
        raise files.cannot_write(root, err) from None
    raise RunDirError(f"no free run folder name under {root} for {base}")


def write_json(path: Path, data: Mapping) -> None:
    files.write_file(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


def write_text(path: Path, text: str) -> None:
    files.write_file(path, text.encode("utf-8"))


def append_metric(path: Path, record: Mapping) -> None:
    files.append_line(path, json.dumps(record) + "\n")


def read_metrics(path: Path) -> tuple[list[dict], str | None]:
    """The records of metrics.jsonl, and a note when its last line was torn (a write cut short by a full disk or
    a kill) and so dropped.  A damaged line before the last is a RunDirError: the file is not ours to guess at."""
    text = files.read_text(path)
    lines = [line for line in (text or "").splitlines() if line.strip()]
    records, torn = [], None
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif number == len(lines):
            torn = f"{path}: dropped its torn last line ({len(line)} characters that are not a whole record)"
        else:
            raise RunDirError(f"{path}: line {number} is not a JSON record; the file is damaged")
    return records, torn


def truncate_metrics(path: Path, step: int) -> tuple[list[dict], str | None]:
    """On resume: drops lines logged after the checkpoint's step, which the resumed run logs again, the final
    test line (the resumed run ends with its own), and a torn last line.  Returns the records kept and the note
    on a torn line."""
    records, torn = read_metrics(path)
    kept = [r for r in records if isinstance(r.get("step", 0), int) and r.get("step", 0) <= step
            and r.get("kind") != "test"]
    files.write_file(path, "".join(json.dumps(r) + "\n" for r in kept).encode("utf-8"))
    return kept, torn


def write_diagram(shaped: ShapedNetwork, out: Path) -> Path | None:
    """diagram.svg when Graphviz's `dot` is there and the diagram is within the limits `netspec draw` keeps to
    (at most MAX_BOXES boxes, DOT_TIMEOUT seconds of `dot`); else None."""
    if shutil.which("dot") is None:
        return None
    try:
        from netspec.backends.draw.dot import render, to_digraph
        from netspec.backends.draw.limits import DOT_TIMEOUT, MAX_BOXES
        from netspec.backends.draw.view import build_view

        view = build_view(shaped)
        if len(view.items) > MAX_BOXES:
            return None
        svg = render(to_digraph(view).source, "svg", timeout=DOT_TIMEOUT)
    except Exception:  # a diagram is a courtesy: it must never fail a training run
        return None
    files.write_file(out, svg)
    return out
