"""The command line: the only place that prints and picks exit codes.

Exit codes: 0 success, 2 a user mistake (spec or usage) shown as located errors, 1 a runtime failure.
`validate`, `summary`, `lint`, `list` and `schema` never import torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from . import __version__
from . import source
from .errors import SpecErrors, render

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake on the command line itself (not in a spec)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; we want one line and exit 2
        raise UsageError(message)


def parse_overrides(pairs: list[str] | None) -> dict[str, object]:
    """`--set k=v` pairs; values are read as YAML scalars or lists (`10`, `0.5`, `true`, `[4, 4]`)."""
    overrides = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError(f"--set expects name=value, got {pair!r}")
        try:
            # The spec loader, not yaml.safe_load: it refuses tags, alias bombs and cycles, and a `!!int x` or a
            # 5,000-digit number is a SpecError instead of a ValueError (found by tests/test_cli_misuse.py).
            value = _plain(source.parse_text(text, "--set")) if text.strip() else ""
        except SpecErrors:
            raise UsageError(f"--set {key}: cannot read the value {text!r}")
        if isinstance(value, dict):
            raise UsageError(f"--set {key}: a value must be a scalar or a list, got {text!r}")
        overrides[key.strip()] = value
    return overrides


def _plain(value):
    """Plain lists for the loader's marked ones: params end up in run.json and in checkpoints, which
    `torch.load(weights_only=True)` could not read back with a netspec class inside."""
    return [_plain(item) for item in value] if isinstance(value, list) else value


def add_set_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", metavar="K=V", help="override a spec param (repeatable)")


# ── commands ──────────────────────────────────────────────────────────────────────────────────────────────────

def cmd_validate(args) -> int:
    from .pipeline import shaped_graph

    errors = []
    for ref in args.specs:
        try:
            graph = shaped_graph(ref, parse_overrides(args.set))
            print(f"{ref}: ok — {graph.graph['total_params']:,} params, output {list(graph.graph['output_shape'])}")
        except SpecErrors as err:
            errors.extend(err.errors)
    if errors:
        raise SpecErrors(errors)
    return EXIT_OK


def cmd_summary(args) -> int:
    from .pipeline import shaped_graph
    from .tables import render_table, summarize

    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {args.depth}")
    summary = summarize(shaped_graph(args.spec, parse_overrides(args.set)), args.depth)
    print(json.dumps(summary.to_json(), indent=2) if args.json else render_table(summary))
    return EXIT_OK


def cmd_lint(args) -> int:
    from .errors import render as render_error
    from .graph import lint
    from .pipeline import shaped_graph

    problems = [p for ref in args.specs for p in lint(shaped_graph(ref, parse_overrides(args.set)))]
    for problem in problems:
        print(render_error(problem).replace(": error: ", ": warning: ", 1), file=sys.stderr)
    print(f"{len(problems)} warning(s)" if problems else "no problems found", file=sys.stderr)
    return EXIT_USAGE if problems and args.strict else EXIT_OK


def cmd_compile(args) -> int:
    from .pipeline import shaped_graph

    graph = shaped_graph(args.spec, parse_overrides(args.set))
    out = Path(args.output) if args.output else None
    if out is not None and out.suffix not in (".py", ".pt"):
        raise UsageError(f"-o {out}: the suffix picks the format: .py (PyTorch source) or .pt (weights)")
    if out is not None and out.suffix == ".py":
        from .compile import to_python_source

        _write_text(out, to_python_source(graph))
    else:
        import torch

        from .compile import to_graph_module

        module = to_graph_module(graph)
        if out is None:
            print(module.code.strip("\n"))
            print(f"# {graph.graph['name']}: {graph.graph['total_params']:,} params", file=sys.stderr)
            return EXIT_OK
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(module.state_dict(), out)
    print(f"wrote {out} ({graph.graph['total_params']:,} params)", file=sys.stderr)
    return EXIT_OK


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def cmd_list(args) -> int:
    from .catalog import catalog

    specs, blocks = catalog()
    width = max([len(s.name) for s in specs + blocks] + [8])
    print("specs:")
    for entry in specs:
        print(f"  {entry.name:<{width}}  {entry.doc}")
        if entry.params:
            print(f"  {'':<{width}}  params: " + ", ".join(f"{k}={v}" for k, v in entry.params.items()))
    print("blocks:")
    for entry in blocks:
        print(f"  {entry.name:<{width}}  {entry.doc}")
        if entry.params:
            print(f"  {'':<{width}}  params: " + ", ".join(f"{k}: {v}" for k, v in entry.params.items()))
    return EXIT_OK


def cmd_schema(args) -> int:
    from .schema_gen import SCHEMA_PATH

    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="netspec", description="Convolutional networks as YAML specs, compiled to PyTorch.")
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("validate", help="check specs: schema, names, shapes, expect")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or built-in names")
    add_set_flag(p)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("summary", help="per-node shapes, params and MACs with block subtotals")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--depth", type=int, default=None, help="open N levels of blocks; deeper ones are one row each (0: top-level blocks only)")
    add_set_flag(p)
    p.set_defaults(handler=cmd_summary)

    p = sub.add_parser("lint", help="warn about unused nodes and cycles")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--strict", action="store_true", help="exit 2 when there are warnings")
    add_set_flag(p)
    p.set_defaults(handler=cmd_lint)

    p = sub.add_parser("compile", help="build the torch.fx module; -o x.py writes source, -o x.pt weights")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", metavar="FILE", help="model.py (standalone PyTorch source) or model.pt")
    add_set_flag(p)
    p.set_defaults(handler=cmd_compile)

    p = sub.add_parser("list", help="built-in specs and blocks")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    p.set_defaults(handler=cmd_schema)

    for register in _extensions():
        register(sub, add_set_flag)
    return parser


def _extensions():
    """Commands that live beside their implementation (draw, train, …); each module imports torch lazily."""
    from .draw_cli import register as register_draw
    from .train.cli import register as register_train

    return (register_draw, register_train)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except SpecErrors as err:
        cache: dict[str, list[str]] = {}
        for error in err.errors:
            print(render(error, cache), file=sys.stderr)
        count = len(err.errors)
        print(f"{count} error{'s' if count > 1 else ''}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as err:
        print(f"netspec: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("netspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # a bug in netspec, not a user mistake
        if debug:
            traceback.print_exc()
        print(f"netspec: internal error: {type(err).__name__}: {err} (run with --debug for a traceback)",
              file=sys.stderr)
        return EXIT_FAILURE
