"""The front-end and compile commands: validate, summary, lint, compile, list, schema.  None imports torch at
import time; `compile` does when it runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from netspec.cli.common import EXIT_OK, EXIT_USAGE, UsageError, parse_overrides
from netspec.errors import SpecErrors


def cmd_validate(args) -> int:
    from netspec.pipeline import shaped_network

    errors = []
    for ref in args.specs:
        try:
            shaped = shaped_network(ref, parse_overrides(args.set))
            print(f"{ref}: ok — {shaped.param_count:,} params, output {list(shaped.output_shape)}")
        except SpecErrors as err:
            errors.extend(err.errors)
    if errors:
        raise SpecErrors(errors)
    return EXIT_OK


def cmd_summary(args) -> int:
    from netspec.backends.summary import render_table, summarize
    from netspec.pipeline import shaped_network

    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {args.depth}")
    summary = summarize(shaped_network(args.spec, parse_overrides(args.set)), args.depth)
    print(json.dumps(summary.to_json(), indent=2) if args.json else render_table(summary))
    return EXIT_OK


def cmd_lint(args) -> int:
    from netspec.errors import render
    from netspec.passes.lint import lint
    from netspec.pipeline import shaped_network

    problems = [p for ref in args.specs for p in lint(shaped_network(ref, parse_overrides(args.set)).network)]
    for problem in problems:
        print(render(problem), file=sys.stderr)
    print(f"{len(problems)} warning(s)" if problems else "no problems found", file=sys.stderr)
    return EXIT_USAGE if problems and args.strict else EXIT_OK


def cmd_compile(args) -> int:
    from netspec.pipeline import shaped_network

    shaped = shaped_network(args.spec, parse_overrides(args.set))
    out = Path(args.output) if args.output else None
    if out is not None and out.suffix not in (".py", ".pt"):
        raise UsageError(f"-o {out}: the suffix picks the format: .py (PyTorch source) or .pt (weights)")
    if out is not None and out.suffix == ".py":
        from netspec.backends.pysource import to_python_source

        _write_text(out, to_python_source(shaped))
    else:
        import torch

        from netspec.backends.fx import forward_code, to_graph_module

        module = to_graph_module(shaped)
        if out is None:
            print(forward_code(module))
            print(f"# {shaped.name}: {shaped.param_count:,} params", file=sys.stderr)
            return EXIT_OK
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(module.state_dict(), out)
    print(f"wrote {out} ({shaped.param_count:,} params)", file=sys.stderr)
    return EXIT_OK


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def cmd_list(args) -> int:
    from netspec.frontend.catalog import catalog

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
    from netspec.frontend.grammar import SCHEMA_PATH

    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return EXIT_OK
