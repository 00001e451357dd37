"""The run directory `runs/<spec>-<timestamp>/` and the spec it keeps.  No torch.

    spec/…            the spec file and the block libraries it imports, as read (a run rebuilds from these)
    run.json          spec name, params, recipe, options, command line, versions, device, world size
    metrics.jsonl     one JSON object per line: {"kind": "step" | "epoch", …}
    curves.png        train loss, train acc and test acc per epoch
    summary.txt       the network's table, the recipe and the results
    diagram.svg       when Graphviz's `dot` is installed
    last.pt, best.pt  checkpoints (atomic); model.safetensors: the best weights
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from netspec.frontend.yaml_source import Document
from netspec.ir import ShapedNetwork


@dataclass(frozen=True)
class SpecFiles:
    """A spec and the libraries it imports, as text, by path relative to the spec's folder."""

    main: str
    files: Mapping[str, str]
    params: Mapping[str, object]

    def to_json(self) -> dict:
        return {"main": self.main, "files": dict(self.files), "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Mapping) -> "SpecFiles":
        return cls(str(data["main"]), dict(data["files"]), dict(data.get("params") or {}))

    def write(self, folder: Path) -> Path:
        """Writes every file under `folder`; returns the main spec's path there."""
        for rel, text in self.files.items():
            target = (folder / rel).resolve()
            if folder.resolve() not in target.parents:  # a crafted checkpoint must not write elsewhere
                raise ValueError(f"spec file path {rel!r} leaves the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return folder / self.main


def spec_files_of(documents: list[Document], params: Mapping[str, object]) -> SpecFiles:
    """The files a spec loads (its document first); libraries outside the spec's folder are the built-in ones,
    found again by name."""
    base = documents[0].path.parent
    files = {}
    for doc in documents:
        if base in doc.path.parents:
            files[str(doc.path.relative_to(base))] = doc.path.read_text(encoding="utf-8")
    return SpecFiles(str(documents[0].path.relative_to(base)), files, dict(params))


def create(root: Path, name: str) -> Path:
    """A new, empty run folder.  `mkdir` without exist_ok is atomic, so two runs started in the same second
    get `name-TIME` and `name-TIME-2` instead of sharing one."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for attempt in range(1, 10_000):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name under {root} for {base}")


def write_json(path: Path, data: Mapping) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(temp, path)


def append_metric(path: Path, record: Mapping) -> None:
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_metrics(path: Path, step: int) -> None:
    """On resume: drops lines logged after the checkpoint's step, which the resumed run logs again."""
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    os.replace(temp, path)


def write_diagram(shaped: ShapedNetwork, out: Path) -> Path | None:
    """diagram.svg when Graphviz's `dot` is there; else None."""
    if shutil.which("dot") is None:
        return None
    try:
        from netspec.backends.draw.dot import draw_graph

        svg = draw_graph(shaped).pipe(format="svg")
    except Exception:  # a diagram is a courtesy: it must never fail a training run
        return None
    temp = out.with_name(f".{out.name}.tmp")
    temp.write_bytes(svg)
    os.replace(temp, out)
    return out
