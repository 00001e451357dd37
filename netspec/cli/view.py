"""`netspec view`: the command-line side of backends/draw/page.py.  Imports neither torch nor (until it runs)
graphviz.

    netspec view SPEC                      writes NAME.html (the network's name) in the current folder
    netspec view SPEC -o page.html --open  … and opens it in the default browser
    netspec view NEW --diff OLD            colours what changed from OLD to NEW
Exit codes: 0 written; 2 a spec or usage mistake, or a network too big for `dot` even fully folded (nothing is
written); 1 `dot` missing, failing or running out of time, or the file cannot be written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netspec.backends.draw.limits import DOT_TIMEOUT, MAX_BOXES


def register(sub, add_set_flag) -> None:
    p = sub.add_parser("view", help="an interactive HTML page of the diagram, linked to the spec's source",
                       description="Writes one self-contained HTML file (no network access): the diagram at every "
                                   "level of folding, laid out by Graphviz; click a block to open or close it, "
                                   "hover for shapes, params and MACs, follow a box to its line in the spec.")
    p.add_argument("spec", metavar="SPEC", help="a path or a built-in name (`netspec list`)")
    p.add_argument("-o", "--output", metavar="FILE", help="the page to write (default: NAME.html in the current "
                                                          "folder, NAME being the network's name)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser (default: only "
                                                       "write it)")
    p.add_argument("--diff", metavar="OLD", help="another spec (a path or a built-in name): colour the nodes added, "
                                                 "removed or changed since it (default: no diff)")
    p.add_argument("--max-boxes", type=int, default=MAX_BOXES, metavar="N",
                   help=f"refuse to hand `dot` a level of more boxes; deeper levels are left out "
                        f"(default: {MAX_BOXES:,})")
    p.add_argument("--timeout", type=float, default=DOT_TIMEOUT, metavar="SECONDS",
                   help=f"stop `dot` after this long, for each level (default: {DOT_TIMEOUT:g})")
    add_set_flag(p)
    p.set_defaults(handler=cmd_view)


def cmd_view(args) -> int:
    from netspec.cli.common import (EXIT_FAILURE, EXIT_OK, UsageError, check_dot_flags, parse_overrides,
                                    shaped_for_output)

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"-o {out}: the page is HTML: name it .html")
    check_dot_flags(args)
    overrides = parse_overrides(args.set)

    from netspec.backends.draw.dot import DotFailed, DotMissing, DotTimedOut
    from netspec.backends.draw.page import PageTooBig, build_page, source_files
    from netspec.backends.output import write_atomic
    from netspec.pipeline import read, shaped_network

    # Everything is checked before anything is written: an error never leaves a partial page.
    shaped = shaped_for_output(args.spec, overrides, out)
    if out is None:  # a network's name is an identifier (the schema), so this stays in the working folder
        out = Path(f"{shaped.name}.html")
        shaped_for_output(args.spec, overrides, out)  # the default name must not be the spec either
    sources = source_files(read(args.spec))
    diff = None
    if args.diff is not None:  # `netspec diff OLD SPEC`'s node statuses; "reshaped" and "same" are not coloured
        from netspec.backends.diff import diff_networks
        from netspec.backends.draw.page import DIFF_STATES

        status = diff_networks(shaped_network(args.diff, overrides), shaped, keys=False).status
        diff = {name: state for name, state in status.items() if state in DIFF_STATES}
    try:
        page = build_page(shaped, sources, diff, args.timeout, args.max_boxes)
    except PageTooBig as err:
        raise UsageError(f"{err}; raise --max-boxes") from None
    except DotMissing as err:
        print(f"netspec: Graphviz's `dot` lays out the page and was not found, so {out} was not made.\n"
              f"  To get it, {err}", file=sys.stderr)
        return EXIT_FAILURE
    except DotTimedOut as err:
        print(f"netspec: dot did not finish a level of {out} in time ({err}); allow more with --timeout, or "
              "leave out the deepest levels with --max-boxes", file=sys.stderr)
        return EXIT_FAILURE
    except DotFailed as err:
        print(f"netspec: dot failed on {out}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    write_atomic(out, page.encode("utf-8"))
    print(f"wrote {out} ({len(page.encode('utf-8')) / 1e3:,.0f} kB)", file=sys.stderr)
    if args.open:
        import webbrowser

        if not webbrowser.open(out.resolve().as_uri()):
            print(f"netspec: no browser could be started; open {out} yourself", file=sys.stderr)
    return EXIT_OK

