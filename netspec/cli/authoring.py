"""The authoring commands: `netspec new NAME [--from SPEC]` writes a starter spec; `netspec upgrade SPEC`
rewrites a spec in the current format version.  Both edit text where the loader's marks say (no YAML dump), so
comments and layout stay.  Neither imports torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from netspec.cli.common import EXIT_OK, UsageError

MODELINE = "# yaml-language-server: $schema="
MAX_NAME = 100

STARTER = """\
{modeline}
netspec: {version}
name: {name}
doc: |-
  One line about the network, shown by `netspec list`.
  Details below the first line. docs/spec-format.md describes every key; docs/ops.md every op.
params:
  num_classes: 10
  width: {{default: 32, type: int, doc: channels of the first stage; the second has twice as many}}
input: [1, 28, 28]                      # [channels, height, width] without the batch; Fashion-MNIST by default
body:
  - name: stage1
    seq:
      - conv: {{out: $width, kernel: 3, padding: 1, bias: false}}   # no bias: the BatchNorm after it has one
      - batchnorm
      - relu
      - maxpool: {{kernel: 2, stride: 2}}
  - name: stage2
    seq:
      - conv: {{out: "${{2 * width}}", kernel: 3, padding: 1, bias: false}}
      - batchnorm
      - relu
  - global_avgpool
  - flatten
  - {{name: fc, linear: {{out: $num_classes}}}}     # in_features is inferred
train: {{lr: 0.1, epochs: 5, batch_size: 128, optimizer: momentum, schedule: cosine}}
"""


def register(sub, add_set_flag) -> None:
    p = sub.add_parser("new", help="write a starter spec NAME.yaml in this folder (from a template or a spec)")
    p.add_argument("name", metavar="NAME", help="the network's name: letters, digits and _; the file is NAME.yaml")
    p.add_argument("--from", dest="source", metavar="SPEC",
                   help="start from this spec (a path or a built-in name) (default: a small CNN)")
    p.add_argument("--force", action="store_true", help="replace an existing NAME.yaml (default: refuse)")
    p.set_defaults(handler=cmd_new)

    p = sub.add_parser("upgrade", help="rewrite a spec in the current format version, keeping its comments")
    p.add_argument("spec", metavar="SPEC", help="a spec or block library file")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the upgraded spec here (default: in place, the original kept as SPEC.vN.bak)")
    p.set_defaults(handler=cmd_upgrade)


# ── new ───────────────────────────────────────────────────────────────────────────────────────────────────────

def check_name(name: str) -> str:
    """A network name that is also a safe file name in this folder: no path, no dots, not too long."""
    from netspec.frontend.grammar import NAME_PATTERN, NAME_RULE
    import re

    if name.endswith((".yaml", ".yml")):
        raise UsageError(f"netspec new takes the network's name, not a file name: `netspec new "
                         f"{Path(name).stem}` writes {Path(name).stem}.yaml")
    if not re.match(NAME_PATTERN, name) or len(name) > MAX_NAME:
        raise UsageError(f"invalid name {name[:MAX_NAME]!r}: expected {NAME_RULE}, at most {MAX_NAME} characters "
                         "(the spec is written as NAME.yaml in this folder)")
    return name


def schema_reference(folder: Path) -> str:
    """The schema as the spec's modeline names it: relative to the spec's folder when the schema lies inside it
    (a project with its own virtual environment), else its absolute path."""
    from netspec.frontend.grammar import SCHEMA_PATH

    schema, folder = SCHEMA_PATH.resolve(), folder.resolve()
    return schema.relative_to(folder).as_posix() if schema.is_relative_to(folder) else schema.as_posix()


def cmd_new(args) -> int:
    from netspec.backends.output import write_atomic
    from netspec.frontend.formats import CURRENT
    from netspec.pipeline import shaped_network

    name = check_name(args.name)
    target = Path(f"{name}.yaml")
    if os.path.lexists(target) and not args.force:
        raise UsageError(f"{target} exists; it is never written over unless you add --force")
    modeline = MODELINE + schema_reference(Path.cwd())
    if args.source is None:
        text = STARTER.format(modeline=modeline, version=CURRENT, name=name)
    else:
        text = _from_spec(args.source, name, modeline, Path.cwd())
    write_atomic(target, text.encode("utf-8"))
    shaped = shaped_network(target)   # what it wrote validates (a failure here is a bug, shown as the errors)
    origin = f" from {args.source}" if args.source else ""
    print(f"wrote {target}{origin}: {shaped.param_count:,} params, output {list(shaped.output_shape)}; "
          f"next: netspec summary {target}", file=sys.stderr)
    return EXIT_OK


def _from_spec(ref: str, name: str, modeline: str, folder: Path) -> str:
    """The source spec's text, in the current format, with `name:` set, the modeline pointing at the schema, and
    imports rewritten to resolve from `folder` (built-in libraries by their built-in path)."""
    from netspec.errors import SpecErrors
    from netspec.frontend import formats
    from netspec.frontend.imports import builtin_root, resolve_spec
    from netspec.frontend.text_edits import Edit, apply
    from netspec.frontend.yaml_source import MList, mark_of, read_document
    from netspec.pipeline import shaped_network

    path = resolve_spec(ref)
    shaped_network(path)   # the source must be a valid network (its located errors otherwise), before any write
    doc = read_document(path)
    text = path.read_text(encoding="utf-8")
    data = doc.data
    if not formats.is_readable(formats.version_of(data)):
        raise SpecErrors.one("--from: the spec's format version is not one this netspec reads",
                             mark_of(data, "netspec"))
    edits = formats.text_edits(doc)[0] if formats.version_of(data) < formats.CURRENT else []
    edits.append(Edit(mark_of(data, "name"), str(data["name"]), name))
    imports = data.get("imports")
    root = builtin_root().resolve()
    for i, entry in enumerate(imports if isinstance(imports, MList) else ()):
        target = _imported(path.parent, entry, root)
        if target.is_relative_to(root):
            new = target.relative_to(root).as_posix()
        elif target.is_relative_to(folder.resolve()):
            new = target.relative_to(folder.resolve()).as_posix()
        else:
            raise UsageError(f"--from {ref} imports {entry}, which a spec in this folder cannot import (imports stay "
                             "inside the spec's folder and the built-in library): copy it here first")
        if new != entry:
            edits.append(Edit(mark_of(imports, i), entry, new))
    text = apply(text, edits)
    lines = text.split("\n")
    if lines[0].startswith(MODELINE):
        lines[0] = modeline
    else:
        lines.insert(0, modeline)
    return "\n".join(lines)


def _imported(base: Path, entry: str, root: Path) -> Path:
    """Where an import of a spec in `base` resolves (it loaded, so one of the two exists)."""
    local = (base / entry).resolve()
    return local if local.is_file() else (root / entry).resolve()


# ── upgrade ───────────────────────────────────────────────────────────────────────────────────────────────────

def cmd_upgrade(args) -> int:
    from netspec.backends.output import check_target, same_file_as, write_atomic
    from netspec.errors import SpecErrors, display_path
    from netspec.frontend import formats
    from netspec.frontend.text_edits import apply
    from netspec.frontend.yaml_source import mark_of, read_document

    path = Path(args.spec)
    doc = read_document(path)
    version = formats.version_of(doc.data)
    if not formats.is_readable(version):
        from netspec.frontend.schema import schema_errors

        raise SpecErrors(list(schema_errors(doc))[:1] or [
            SpecErrors.one("no `netspec:` format version", mark_of(doc.data, "netspec")).errors[0]])
    shown = display_path(path)
    if version == formats.CURRENT:
        print(f"{shown} is already in format {version}: nothing to do", file=sys.stderr)
        return EXIT_OK
    text = path.read_text(encoding="utf-8")
    edits, changes = formats.text_edits(doc)
    upgraded = apply(text, edits)
    out = Path(args.output) if args.output else path
    if args.output:
        if same_file_as(out, [path]) is not None:
            raise UsageError(f"-o {out} is the spec itself; leave out -o to upgrade it in place (with a backup)")
        check_target(out)
        backup = None
    else:
        backup = path.with_name(f"{path.name}.v{version}.bak")
        if not write_atomic(backup, text.encode("utf-8"), overwrite=False):
            raise UsageError(f"the backup {display_path(backup)} exists already; move it away, or write the "
                             "upgrade elsewhere with -o")
    write_atomic(out, upgraded.encode("utf-8"))
    print(f"upgraded {shown} from format {version} to {formats.CURRENT}"
          + (f", written to {display_path(out)}" if args.output else f" (the original is {display_path(backup)})")
          + f": {len(changes)} change{'s' if len(changes) != 1 else ''}", file=sys.stderr)
    for step in dict.fromkeys(step for step, _, _ in changes):
        print(f"  format {step.to}: {step.what}", file=sys.stderr)
        for _, rename, edit in (c for c in changes if c[0] is step):
            print(f"    line {edit.mark.line}, column {edit.mark.col}: `{rename.old}` → `{rename.new}`", file=sys.stderr)
    return EXIT_OK
