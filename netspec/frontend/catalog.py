"""The built-in specs and blocks with their one-line docs and params, for `netspec list`.  No torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from netspec.errors import SpecErrors
from netspec.frontend.imports import builtin_root
from netspec.frontend.yaml_source import MDict, read_document
from netspec.frontend.param_types import show
from netspec.frontend.parse import param_defaults, params_of, template_params


@dataclass(frozen=True)
class Entry:
    name: str
    doc: str
    params: dict = field(default_factory=dict)


def first_line(doc) -> str:
    return str(doc or "").strip().split("\n")[0]


def catalog() -> tuple[list[Entry], list[Entry]]:
    """(network specs, block templates), sorted by name; files that fail to parse are listed with the error."""
    root = builtin_root()
    specs, blocks = [], []
    for path in sorted(root.rglob("*.yaml")):
        name = str(path.relative_to(root).with_suffix(""))
        try:
            data = read_document(path).data
        except SpecErrors as err:
            specs.append(Entry(name, f"(unreadable: {err.errors[0].message})"))
            continue
        if not isinstance(data, MDict):
            continue
        if "body" in data:
            params = param_defaults(data.get("params") or {})
            specs.append(Entry(name, first_line(data.get("doc")), params))
        for block, definition in (data.get("blocks") or {}).items():
            if not isinstance(definition, MDict):
                continue
            decls, _ = template_params(params_of(definition))
            params = {k: show(p.type) + ("" if p.required else f" = {p.default.raw}") for k, p in decls.items()}
            blocks.append(Entry(block, first_line(definition.get("doc")), params))
    return specs, sorted(blocks, key=lambda e: e.name)
