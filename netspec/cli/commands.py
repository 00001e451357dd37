"""The front-end and compile commands: validate, summary, lint, compile, list, schema.  None imports torch at
import time; `compile` does when it runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from netspec.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, parse_overrides, shaped_for_output
from netspec.errors import SpecErrors


def cmd_validate(args) -> int:
    from netspec.pipeline import shaped_network

    overrides = parse_overrides(args.set)
    errors, reports = [], []
    for ref in args.specs:
        try:
            shaped = shaped_network(ref, overrides)
        except SpecErrors as err:
            errors.extend(err.errors)
            reports.append(_report(ref, err.errors))
            continue
        reports.append(_report(ref, (), name=shaped.name, params=shaped.param_count, macs=shaped.macs,
                               input=list(shaped.network.input_shape), output=list(shaped.output_shape)))
        if not args.json:
            print(f"{ref}: ok — {shaped.param_count:,} params, output {list(shaped.output_shape)}")
    if args.json:
        return _print_reports(reports)
    if errors:
        raise SpecErrors(errors)
    return EXIT_OK


def _report(ref: str, errors, **facts) -> dict:
    """One spec's entry in the --json output of validate and lint."""
    from netspec.errors import to_json

    return {"spec": ref, "ok": not errors, **facts, "errors": [to_json(e) for e in errors]}


def _print_reports(reports: list[dict], failed: bool = False) -> int:
    """`{"specs": [...], "errors": N}` on stdout; exit 2 when a spec has errors (or `failed`)."""
    count = sum(len(report["errors"]) for report in reports)
    print(json.dumps({"specs": reports, "errors": count}, indent=2))
    return EXIT_USAGE if count or failed else EXIT_OK


def cmd_summary(args) -> int:
    from netspec.backends.summary import render_table, summarize
    from netspec.pipeline import shaped_network

    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {args.depth}")
    summary = summarize(shaped_network(args.spec, parse_overrides(args.set)), args.depth)
    print(json.dumps(summary.to_json(), indent=2) if args.json else render_table(summary))
    return EXIT_OK


def cmd_lint(args) -> int:
    """Warnings and errors are shown, info findings with --info; exit 0 with warnings, 1 with them under
    --strict, 2 when a spec has errors (it is reported with them, and the other specs are still linted)."""
    from netspec.errors import ERROR, WARNING, render
    from netspec.passes.lint import lint
    from netspec.pipeline import shaped_network

    overrides = parse_overrides(args.set)
    reports, errors, shown, silenced, infos = [], [], [], 0, 0
    for ref in args.specs:
        try:
            findings = lint(shaped_network(ref, overrides), silenced=True)
        except SpecErrors as err:
            errors += err.errors
            reports.append({**_report(ref, err.errors), "warnings": [], "silenced": 0})
            continue
        loud = [f for f in findings if not f.silenced]
        silenced += len(findings) - len(loud)
        infos += sum(f.severity not in (ERROR, WARNING) for f in loud)
        shown += [f for f in loud if args.info or f.severity in (ERROR, WARNING)]
        reports.append({**_report(ref, ()), "warnings": [f.to_json() for f in loud],
                        "silenced": len(findings) - len(loud)})
    warned = any(f.severity == WARNING for f in shown)
    failed = any(f.severity == ERROR for f in shown)
    code = EXIT_USAGE if errors or failed else EXIT_FAILURE if warned and args.strict else EXIT_OK
    if args.json:
        count = sum(len(report["errors"]) for report in reports)
        print(json.dumps({"specs": reports, "errors": count}, indent=2))
        return code
    cache: dict[str, list[str]] = {}
    for finding in shown:
        print(render(finding.error(), cache), file=sys.stderr)
    if errors:
        raise SpecErrors(errors)
    print(_lint_tally(shown, silenced, 0 if args.info else infos), file=sys.stderr)
    return code


def _lint_tally(shown, silenced: int, hidden_infos: int) -> str:
    """`2 warnings, 1 info (3 silenced by the specs' `lint:`; 1 info finding hidden: --info shows it)`."""
    counts = {}
    for finding in shown:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    parts = [f"{n} {severity}{'s' if n > 1 and severity != 'info' else ''}" for severity, n in counts.items()]
    extra = ([f"{silenced} silenced by `lint:` in the specs"] if silenced else []) + \
        ([f"{hidden_infos} info finding{'s' if hidden_infos > 1 else ''} not shown: --info shows "
          f"{'them' if hidden_infos > 1 else 'it'}"] if hidden_infos else [])
    return (", ".join(parts) or "no warnings") + (f" ({'; '.join(extra)})" if extra else "")


def cmd_compile(args) -> int:
    from netspec.backends.output import write_atomic

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix not in (".py", ".pt"):
        raise UsageError(f"-o {out}: the suffix picks the format: .py (PyTorch source) or .pt (weights)")
    shaped = shaped_for_output(args.spec, parse_overrides(args.set), out)
    if out is not None and out.suffix == ".py":
        from netspec.backends.pysource import to_python_source

        write_atomic(out, to_python_source(shaped).encode("utf-8"))
    else:
        import torch

        from netspec.backends.fx import forward_code, to_graph_module

        module = to_graph_module(shaped, args.max_params)
        if out is None:
            print(forward_code(module))
            print(f"# {shaped.name}: {shaped.param_count:,} params", file=sys.stderr)
            return EXIT_OK
        write_atomic(out, lambda handle: torch.save(module.state_dict(), handle))
    print(f"wrote {out} ({shaped.param_count:,} params)", file=sys.stderr)
    return EXIT_OK


def cmd_list(args) -> int:
    from netspec.frontend.catalog import catalog

    specs, blocks = catalog()
    if args.json:
        print(json.dumps({"specs": [{"name": e.name, "doc": e.doc, "params": e.params} for e in specs],
                          "blocks": [{"name": e.name, "doc": e.doc, "params": e.params, "import": e.source}
                                     for e in blocks]}, indent=2, default=str))
        return EXIT_OK
    width = max([len(s.name) for s in specs + blocks] + [8])
    indent = f"  {'':<{width}}  "
    print("specs:")
    for entry in specs:
        print(f"  {entry.name:<{width}}  {entry.doc}")
        if entry.params:
            print(indent + "params: " + ", ".join(f"{k}={v}" for k, v in entry.params.items()))
    print("blocks:")
    for entry in blocks:
        print(f"  {entry.name:<{width}}  {entry.doc}")
        print(indent + f"imports: [{entry.source}]")
        if entry.params:
            print(indent + "params: " + ", ".join(
                f"{k}: {p['type']}" + (f" = {p['default']}" if "default" in p else "") for k, p in entry.params.items()))
    return EXIT_OK


def cmd_schema(args) -> int:
    from netspec.frontend.grammar import SCHEMA_PATH

    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return EXIT_OK
