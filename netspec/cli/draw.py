"""`netspec draw`: the command-line side of backends/draw/.  Imports neither torch nor (until it runs) graphviz.

    netspec draw SPEC                      DOT on stdout (pipe it into `dot`, or redirect it)
    netspec draw SPEC -o net.svg           .svg, .png, .pdf through Graphviz's `dot`; .dot as text
Exit codes: 0 written; 2 a spec or usage mistake (nothing is written); 1 `dot` missing (the .dot is written
beside the requested file, with how to install Graphviz) or failing, or the file cannot be written.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Equal to draw_dot.RANKDIRS and draw_dot.FORMATS (a test checks): repeated so that building the parser, which every
# command does, never imports graphviz.
RANKDIRS = ("TB", "LR", "BT", "RL")
FORMATS = ("svg", "png", "pdf", "dot")


def register(sub, add_set_flag) -> None:
    p = sub.add_parser("draw", help="Graphviz diagram: -o net.svg|png|pdf|dot (DOT on stdout without -o)",
                       description="Draws the shape-checked network: ops with their key arguments and "
                                   "parameters, tensor shapes on the edges, blocks as labelled clusters.")
    p.add_argument("spec", metavar="SPEC", help="a spec file or built-in name")
    p.add_argument("-o", "--output", metavar="FILE", help="net.svg, net.png, net.pdf or net.dot (by suffix); "
                   "without it the DOT source goes to stdout")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="draw blocks nested more than N levels deep as one box each (0: top-level blocks)")
    p.add_argument("--no-fold", dest="fold", action="store_false",
                   help="draw every instance of repeated identical blocks instead of one marked ×N")
    p.add_argument("--rankdir", default="TB", choices=RANKDIRS, help="direction of flow: TB (default) or LR")
    p.add_argument("--legend", action="store_true", help="add a legend of the op families' colours")
    add_set_flag(p)
    p.set_defaults(handler=cmd_draw)


def cmd_draw(args) -> int:
    from netspec.cli.common import EXIT_FAILURE, EXIT_OK, UsageError, parse_overrides

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix.lower().lstrip(".") not in FORMATS:
        raise UsageError(f"-o {out}: the suffix picks the format: " + ", ".join(f".{f}" for f in FORMATS))
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {args.depth}")
    overrides = parse_overrides(args.set)

    from netspec.backends.draw.dot import DotFailed, DotMissing, draw_graph, write_diagram
    from netspec.pipeline import shaped_network

    # The whole spec is checked before anything is written: an error never leaves a partial diagram.
    digraph = draw_graph(shaped_network(args.spec, overrides), args.depth, args.fold, args.rankdir, args.legend)
    if out is None:
        sys.stdout.write(digraph.source)
        return EXIT_OK
    try:
        write_diagram(digraph, out)
    except DotMissing as err:
        print(f"netspec: Graphviz's `dot` was not found, so {out} was not made; wrote {out.with_suffix('.dot')} "
              f"instead.\n  To get images, {err}\n  then: dot -T{out.suffix.lower().lstrip('.')} "
              f"{out.with_suffix('.dot')} -o {out}", file=sys.stderr)
        return EXIT_FAILURE
    except DotFailed as err:
        print(f"netspec: dot failed on {out}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as err:
        print(f"netspec: cannot write {out}: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK
