"""`netspec draw`: the command-line side of backends/draw/.  Imports neither torch nor (until it runs) graphviz.

    netspec draw SPEC                      DOT on stdout (pipe it into `dot`, or redirect it)
    netspec draw SPEC -o net.svg           .svg, .png, .pdf through Graphviz's `dot`; .dot as text
Exit codes: 0 written; 2 a spec or usage mistake, or a diagram too big for `dot` (nothing is written); 1 `dot`
missing (the .dot is written beside the requested file unless one is there, with how to install Graphviz),
failing or running out of time, or the file cannot be written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netspec.backends.draw.limits import DOT_TIMEOUT, MAX_BOXES

# Equal to RANKDIRS, FORMATS and THEMES of backends/draw/dot.py (a test checks): repeated so that building the parser,
# which every command does, never imports graphviz.
RANKDIRS = ("TB", "LR", "BT", "RL")
FORMATS = ("svg", "png", "pdf", "dot")
THEMES = ("light", "dark")
DEPTHS_TRIED = 8  # for the --depth suggestion: each try builds one view (linear in the network)


def register(sub, add_set_flag) -> None:
    p = sub.add_parser("draw", help="Graphviz diagram: -o net.svg|png|pdf|dot (DOT on stdout without -o)",
                       description="Draws the shape-checked network: ops with their key arguments and "
                                   "parameters, tensor shapes on the edges, blocks as labelled clusters.")
    p.add_argument("spec", metavar="SPEC", help="a path or a built-in name (`netspec list`)")
    p.add_argument("-o", "--output", metavar="FILE", help="net.svg, net.png, net.pdf or net.dot (by suffix) "
                   "(default: the DOT source on stdout)")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="draw blocks nested more than N levels deep as one box each (0: top-level blocks) "
                        "(default: every op)")
    p.add_argument("--no-fold", dest="fold", action="store_false",
                   help="draw every instance of repeated identical blocks instead of one marked ×N "
                        "(default: fold them)")
    p.add_argument("--rankdir", default="TB", choices=RANKDIRS, help="direction of flow (default: TB)")
    p.add_argument("--legend", action="store_true", help="add a legend of the op families' colours (default: none)")
    p.add_argument("--theme", default="light", choices=THEMES,
                   help="dark: light text and lines on a dark background (default: light)")
    p.add_argument("--max-boxes", type=int, default=MAX_BOXES, metavar="N",
                   help=f"refuse to hand `dot` a diagram of more boxes (default: {MAX_BOXES:,})")
    p.add_argument("--timeout", type=float, default=DOT_TIMEOUT, metavar="SECONDS",
                   help=f"stop `dot` after this long (default: {DOT_TIMEOUT:g})")
    add_set_flag(p)
    p.set_defaults(handler=cmd_draw)


def cmd_draw(args) -> int:
    from netspec.cli.common import (EXIT_FAILURE, EXIT_OK, UsageError, check_dot_flags, parse_overrides,
                                    shaped_for_output)

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix.lower().lstrip(".") not in FORMATS:
        raise UsageError(f"-o {out}: the suffix picks the format: " + ", ".join(f".{f}" for f in FORMATS))
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {args.depth}")
    check_dot_flags(args)
    overrides = parse_overrides(args.set)

    from netspec.backends.draw.dot import DotFailed, DotMissing, DotTimedOut, to_digraph, write_diagram
    from netspec.backends.draw.view import build_view

    # The whole spec is checked before anything is written: an error never leaves a partial diagram.
    shaped = shaped_for_output(args.spec, overrides, out)
    view = build_view(shaped, args.depth, args.fold)
    digraph = to_digraph(view, args.rankdir, args.legend, args.theme)
    if out is None:
        sys.stdout.write(digraph.source)
        return EXIT_OK
    if out.suffix.lower() != ".dot" and len(view.items) > args.max_boxes:
        raise UsageError(_too_big(shaped, args, len(view.items)))
    try:
        write_diagram(digraph, out, args.timeout)
    except DotMissing as err:
        dot_file, fmt = out.with_suffix(".dot"), out.suffix.lower().lstrip(".")
        if err.dot_file:
            done, then = f"wrote {dot_file} instead", f"dot -T{fmt} {dot_file} -o {out}"
        else:
            done, then = f"{dot_file} exists, so it was not written either", "run this command again"
        print(f"netspec: Graphviz's `dot` was not found, so {out} was not made; {done}.\n  To get images, {err}\n"
              f"  then: {then}", file=sys.stderr)
        return EXIT_FAILURE
    except DotTimedOut as err:
        print(f"netspec: dot did not finish {out} in time ({err}); draw less with --depth N, or allow more "
              "with --timeout", file=sys.stderr)
        return EXIT_FAILURE
    except DotFailed as err:
        print(f"netspec: dot failed on {out}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


def _too_big(shaped, args, boxes: int) -> str:
    """The refusal, naming the deepest --depth (of the first few) whose diagram fits."""
    from netspec.backends.draw.view import build_view

    fits = None
    for depth in range(min(DEPTHS_TRIED, args.depth if args.depth is not None else DEPTHS_TRIED)):
        count = len(build_view(shaped, depth, args.fold).items)
        if count > args.max_boxes:
            break
        fits = (depth, count)
    hint = f"try --depth {fits[0]} ({fits[1]:,} boxes)" if fits else "draw it as .dot"
    return (f"the diagram has {boxes:,} boxes, more than `dot` is given (--max-boxes {args.max_boxes:,}); "
            f"{hint}, or raise --max-boxes")
