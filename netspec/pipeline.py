"""The front end and the passes, phase by phase, from a spec to its ShapedNetwork.  Nothing else wires them.

    spec ──read──▶ marked data ──validate──▶ Spec ──expand──▶ Network ──infer, check_expect──▶ ShapedNetwork

`read` follows the spec's imports; `check_expect` applies only at the spec's own params.  Compiling is not wired
here: each command builds the ShapedNetwork once and hands it on, and the backends (fx, pysource, summary, draw)
and the training run take the IR, never a path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from netspec.frontend import imports, validate
from netspec.frontend.syntax import Spec
from netspec.frontend.yaml_source import Document, parse_text
from netspec.ir import ShapedNetwork
from netspec.passes import expand, shapes


def read(ref: str | Path) -> list[Document]:
    """A spec file or built-in name → its document and those of its imports, in order (raises SpecErrors)."""
    return imports.load_all(imports.resolve_spec(str(ref)))


def read_text(text: str, name: str = "<string>") -> list[Document]:
    """A spec given as YAML text → its document and those of its imports.  Errors are located `<string>:line:col`;
    imports are read as for a spec file in the current folder (that folder and the built-in library)."""
    root = Document(Path.cwd() / name, name, parse_text(text, name), len(text.encode("utf-8", "replace")))
    return imports.load_imports(root)


def read_data(data: Mapping, name: str = "<dict>") -> list[Document]:
    """A spec given as data (plain dicts, lists or tuples, strings, numbers, booleans, None) → as `read_text` of its YAML
    form, `yaml.safe_dump(data, sort_keys=False)`: the line:col of an error count in that text, and its JSON
    pointer (`at: /body/3/conv/out`) names the value in `data`."""
    import yaml

    try:
        text = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as err:
        raise TypeError(f"a spec given as a dict holds plain data only (dicts, lists, str, int, float, bool, "
                        f"None): {err}") from None
    return read_text(text, name)


def load_spec(ref: str | Path, overrides: Mapping[str, object] | None = None) -> Spec:
    """A spec file or built-in name → a validated Spec (raises SpecErrors)."""
    return validate.validate(read(ref), overrides)


def shaped_network(ref: str | Path, overrides: Mapping[str, object] | None = None) -> ShapedNetwork:
    """Everything up to the shape-checked network, `expect:` included (at the default params).  No torch."""
    return shape_documents(read(ref), overrides)


def shape_documents(documents: list[Document], overrides: Mapping[str, object] | None = None) -> ShapedNetwork:
    """`shaped_network` for documents already read (a training run keeps their text for its run folder)."""
    spec = validate.validate(documents, overrides)
    shaped = shapes.infer(expand.expand(spec))
    # `expect:` states facts about the spec as written; an override that changes a param (`--set ratio=1`,
    # `num_classes=100`) builds another network, whose facts the spec does not state.
    return shaped if changes_params(spec, overrides) else shapes.check_expect(shaped)


def changes_params(spec: Spec, overrides: Mapping[str, object] | None) -> bool:
    """Whether `overrides` give some param a value other than the spec's default."""
    return any(spec.params[name] != spec.defaults.get(name) for name in overrides or {})
