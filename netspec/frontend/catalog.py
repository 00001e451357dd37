"""The built-in specs and public blocks with their one-line docs and params, for `netspec list`.  No torch.

A block is public when it is defined in a library (a file without `body`, under specs/blocks/): a spec imports
it with `imports: [blocks/FILE.yaml]`.  Blocks defined inside a network spec are private to that spec (nothing
can import them: an import brings a library's blocks only), so they are not listed.
"""

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
    params: dict = field(default_factory=dict)  # a spec: name → default; a block: name → {type[, default]}
    source: str = ""                            # the file, relative to the built-in folder: what `imports:` names


def first_line(doc) -> str:
    return str(doc or "").strip().split("\n")[0]


def catalog() -> tuple[list[Entry], list[Entry]]:
    """(network specs, public blocks), sorted by name; files that fail to parse are listed with the error."""
    root = builtin_root()
    specs, blocks = [], []
    for path in sorted(root.rglob("*.yaml")):
        source = path.relative_to(root).as_posix()
        name = source.removesuffix(".yaml")
        try:
            data = read_document(path).data
        except SpecErrors as err:
            specs.append(Entry(name, f"(unreadable: {err.errors[0].message})", source=source))
            continue
        if not isinstance(data, MDict):
            continue
        if "body" in data:
            specs.append(Entry(name, first_line(data.get("doc")), param_defaults(data.get("params") or {}), source))
            continue
        for block, definition in (data.get("blocks") or {}).items():
            if not isinstance(definition, MDict):
                continue
            decls, _ = template_params(params_of(definition))
            params = {k: {"type": show(p.type), **({} if p.required else {"default": p.default.raw})}
                      for k, p in decls.items()}
            blocks.append(Entry(block, first_line(definition.get("doc")), params, source))
    return specs, sorted(blocks, key=lambda e: e.name)
