"""The command line: the only place that prints and picks exit codes.

Exit codes: 0 success, 2 a user mistake (spec or usage) shown as located errors, 1 a runtime failure.
`validate`, `summary`, `lint`, `list` and `schema` never import torch.
"""

from __future__ import annotations

import argparse
import codecs
import sys
import traceback

from netspec import __version__
from netspec.backends.limits import ModelTooLarge, OutOfMemory
from netspec.backends.output import CannotWrite
from netspec.cli.commands import cmd_compile, cmd_lint, cmd_list, cmd_schema, cmd_summary, cmd_validate
from netspec.cli.completion import SHELLS, cmd_completion
from netspec.cli.common import (EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ArgumentParser, UsageError, add_max_params_flag,
                                add_set_flag)
from netspec.errors import SpecErrors, did_you_mean, render


SPEC_HELP = "a path or a built-in name (`netspec list`)"
SPECS_HELP = "paths or built-in names (`netspec list`)"
DEBUG_HELP = "show Python tracebacks for internal errors (default: off)"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="netspec", description="Convolutional networks as YAML specs, compiled to PyTorch.",
                            epilog="`netspec COMMAND -h` describes a command; docs/cli.md has them all.")
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    parser.commands = sub.choices  # command name → its parser (for suggestions and shell completion)

    p = sub.add_parser("validate", help="check specs: schema, names, shapes, expect")
    p.add_argument("specs", nargs="+", metavar="SPEC", help=SPECS_HELP)
    p.add_argument("--json", action="store_true", help="one JSON document on stdout (docs/cli.md) (default: text)")
    add_set_flag(p)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("summary", help="per-node shapes, params and MACs with block subtotals")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="open N levels of blocks; deeper ones are one row each (0: top-level blocks only) "
                        "(default: every node)")
    add_set_flag(p)
    p.set_defaults(handler=cmd_summary)

    p = sub.add_parser("lint", help="warn about likely design mistakes (docs/cli.md lists the rules)")
    p.add_argument("specs", nargs="+", metavar="SPEC", help=SPECS_HELP)
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings (default: exit 0)")
    p.add_argument("--info", action="store_true", help="also show info findings (default: only counted)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout (docs/cli.md) (default: text)")
    add_set_flag(p)
    p.set_defaults(handler=cmd_lint)

    p = sub.add_parser("compile", help="build the torch.fx module; -o x.py writes source, -o x.pt weights")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("-o", "--output", metavar="FILE", help="model.py (standalone PyTorch source) or model.pt "
                   "(default: print the generated forward)")
    add_set_flag(p)
    add_max_params_flag(p)
    p.set_defaults(handler=cmd_compile)

    p = sub.add_parser("list", help="built-in specs and public blocks, with the import that brings each block")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout (docs/cli.md) (default: text)")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    p.set_defaults(handler=cmd_schema)

    p = sub.add_parser("completion", help="print a bash or zsh completion script (docs/cli.md)")
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(handler=cmd_completion)

    for register in _extensions():
        register(sub, add_set_flag)
    for command in sub.choices.values():  # --debug also after the command (it is read before parsing anyway)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def _check_command(parser: ArgumentParser, argv: list[str]) -> None:
    """A misspelt command gets a suggestion (argparse would list every command)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is not None and command not in parser.commands:
        hint = did_you_mean(command, parser.commands) or "`netspec -h` lists the commands"
        raise UsageError(f"unknown command '{command}'; {hint}")


def _extensions():
    """The draw, view, train, compare (diff, compat) and authoring (new, upgrade) commands, each in its own module
    (none imports torch or graphviz at import)."""
    from netspec.cli.authoring import register as register_authoring
    from netspec.cli.compare import register as register_compare
    from netspec.cli.draw import register as register_draw
    from netspec.cli.train import register as register_train
    from netspec.cli.view import register as register_view

    return (register_draw, register_view, register_train, register_compare, register_authoring)


# What the output's few non-ASCII characters become on a terminal that cannot show them (PYTHONIOENCODING=ascii,
# an old Windows console): shapes stay readable as 64x28x28 and rules as ----.
ASCII = {"×": "x", "─": "-", "—": "-", "–": "-", "→": "->", "▸": ">", "…": "...", "≤": "<=", "≥": ">=", "·": "*"}


def _to_ascii(err: UnicodeError):
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return "".join(ASCII.get(char, "?") for char in err.object[err.start:err.end]), err.end


codecs.register_error("netspec-ascii", _to_ascii)


def _fall_back_to_ascii() -> None:
    """The one place that adapts output to the terminal: when stdout or stderr cannot encode what netspec
    prints, characters are replaced (`×` by `x`, anything else by `?`) instead of failing the command."""
    for stream in (sys.stdout, sys.stderr):
        try:
            "".join(ASCII).encode(stream.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="netspec-ascii")
        except AttributeError:  # a stream without an encoding (replaced by a caller) is left as it is
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _fall_back_to_ascii()
    debug = "--debug" in argv
    try:
        parser = build_parser()
        if not [arg for arg in argv if arg != "--debug"]:  # a bare `netspec`: what there is to do
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        _check_command(parser, argv)
        args = parser.parse_args(argv)
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
    except ModelTooLarge as err:
        print(f"netspec: error: {err.message}; hint: --max-params N raises the limit", file=sys.stderr)
        return EXIT_USAGE
    except CannotWrite as err:
        print(f"netspec: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except OutOfMemory as err:
        print(f"netspec: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
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
