"""The commands that compare two networks: `diff A B` (blocks, nodes, counts, shapes and state_dict keys) and
`compat OLD NEW` (which tensors of OLD's weights load into NEW).  Both import torch when they run (the state_dict
keys of a spec come from its modules built on the meta device), not at import.

`--set` applies to both sides, `--set-a`/`--set-b` (`--set-old`/`--set-new`) to one, after `--set`.  Both exit 0
whatever the differences (as `git diff`), 2 on a mistake; `--exit-code` makes a difference exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from netspec.backends.weights import WEIGHT_SUFFIXES
from netspec.cli.common import EXIT_FAILURE, EXIT_OK, UsageError, parse_overrides
from netspec.errors import SpecErrors

EXIT_CODE_HELP = "exit 1 when {what} (as `git diff --exit-code`) (default: exit 0 either way)"


def register(sub, add_set_flag) -> None:
    p = sub.add_parser("diff", help="two specs side by side: blocks, nodes, params, MACs, shapes, state_dict keys")
    p.add_argument("a", metavar="A", help="a spec: path or built-in name")
    p.add_argument("b", metavar="B", help="the spec to compare it with (may be A again, with other --set-b)")
    p.add_argument("--json", action="store_true", help="the same data as one JSON document (default: a table)")
    p.add_argument("--depth", type=int, default=0, metavar="N",
                   help="one row per block nested N levels deep, as `summary --depth N` (default: 0, top-level "
                        "blocks)")
    add_set_flag(p)
    _side_flags(p, "a")
    p.add_argument("--exit-code", action="store_true", help=EXIT_CODE_HELP.format(what="the networks differ"))
    p.set_defaults(handler=cmd_diff)

    p = sub.add_parser("compat", help="which tensors of OLD's weights load into NEW (same name and shape)")
    p.add_argument("old", metavar="OLD", help="a spec, a weights file (.pt, .safetensors, …) or a run folder")
    p.add_argument("new", metavar="NEW", help="a spec, a weights file or a run folder")
    p.add_argument("--json", action="store_true", help="machine-readable output (default: text)")
    p.add_argument("--rename", action="append", metavar="OLD_PREFIX=NEW_PREFIX",
                   help="map a module prefix of OLD's keys to NEW's, as load_weights(rename=…) (repeatable) "
                        "(default: none)")
    p.add_argument("--skip", action="append", metavar="MODULE",
                   help="leave NEW's module as it is, as load_weights(skip=…) (repeatable) (default: none)")
    add_set_flag(p)
    _side_flags(p, "old")
    p.add_argument("--exit-code", action="store_true",
                   help=EXIT_CODE_HELP.format(what="not every tensor loads one to one"))
    p.set_defaults(handler=cmd_compat)


def _side_flags(parser, first: str) -> None:
    second = {"a": "b", "old": "new"}[first]
    for side in (first, second):
        parser.add_argument(f"--set-{side}", action="append", metavar="K=V",
                            help=f"override a param of {side.upper()} only, after --set (repeatable) "
                                 "(default: none)")


def _overrides(args, side: str) -> dict:
    return {**parse_overrides(args.set), **parse_overrides(getattr(args, f"set_{side}"))}


def _shaped_pair(refs: tuple[str, str], overrides: tuple[dict, dict]):
    """Both shaped networks, with the errors of both reported together."""
    from netspec.pipeline import shaped_network

    shaped, errors = [], []
    for ref, params in zip(refs, overrides):
        try:
            shaped.append(shaped_network(ref, params))
        except SpecErrors as err:
            errors.extend(err.errors)
    if errors:
        raise SpecErrors(errors)
    return shaped


def cmd_diff(args) -> int:
    from netspec.backends.diff import diff_networks, render_table

    if args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {args.depth}")
    params = (_overrides(args, "a"), _overrides(args, "b"))
    a, b = _shaped_pair((args.a, args.b), params)
    diff = diff_networks(a, b, args.depth, (args.a, args.b), overrides=params)
    print(json.dumps(diff.to_json(), indent=2) if args.json else render_table(diff))
    return EXIT_FAILURE if args.exit_code and not diff.identical else EXIT_OK


def is_weights_file(ref: str) -> bool:
    """A run folder, or an existing file with a weights suffix; anything else names a spec."""
    path = Path(ref)
    return path.is_dir() or (path.suffix.lower() in WEIGHT_SUFFIXES and path.is_file())


def state_shapes_of(ref: str, overrides: dict, flag: str) -> dict[str, tuple[int, ...]]:
    """The state_dict keys and shapes of a spec (built on the meta device), a weights file or a run folder."""
    if not is_weights_file(ref):
        from netspec.backends.fx import state_shapes
        from netspec.pipeline import shaped_network

        return state_shapes(shaped_network(ref, overrides))
    if overrides:
        raise UsageError(f"{flag} applies to a spec, and {ref} is a weights file")
    from netspec.backends.weights import shapes_of
    from netspec.train.checkpoint import CheckpointError, load_weights
    from netspec.train.run import weights_path

    try:
        return shapes_of(load_weights(weights_path(ref)))
    except CheckpointError as err:
        raise UsageError(str(err)) from None


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    table = {}
    for item in items or []:
        old, sep, new = item.partition("=")
        if not sep:
            raise UsageError(f"{flag} expects OLD_PREFIX=NEW_PREFIX (NEW_PREFIX may be empty), got {item!r}")
        table[old.strip()] = new.strip()
    return table


def cmd_compat(args) -> int:
    from netspec.backends.compat import compare, render

    shapes, errors = [], []
    for ref, side in ((args.old, "old"), (args.new, "new")):
        try:
            shapes.append(state_shapes_of(ref, _overrides(args, side), f"--set/--set-{side}"))
        except SpecErrors as err:
            errors.extend(err.errors)
    if errors:
        raise SpecErrors(errors)
    report = compare(shapes[1], shapes[0], _pairs(args.rename, "--rename"), args.skip or ())
    if args.json:
        print(json.dumps({"old": args.old, "new": args.new, **report.to_json()}, indent=2))
    else:
        print(f"OLD: {args.old}\nNEW: {args.new}\n" + render(report, "OLD", "NEW"))
    return EXIT_FAILURE if args.exit_code and not report.complete else EXIT_OK
