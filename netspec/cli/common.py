"""What every command shares: exit codes, the usage-error type, the parser class and `--set` overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

from netspec.errors import SpecErrors
from netspec.frontend import yaml_source as source

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake on the command line itself (not in a spec)."""


class ArgumentParser(argparse.ArgumentParser):
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
            value = source.plain(source.parse_text(text, "--set")) if text.strip() else ""
        except SpecErrors:
            raise UsageError(f"--set {key}: cannot read the value {text!r}")
        if isinstance(value, dict):
            raise UsageError(f"--set {key}: a value must be a scalar or a list, got {text!r}")
        overrides[key.strip()] = value
    return overrides


def add_set_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", metavar="K=V",
                        help="override a spec param, NAME=VALUE (repeatable) (default: the spec's params)")


def add_outputs_flag(parser: argparse.ArgumentParser) -> None:
    """`--outputs A,B`: the feature extractor returning those nodes (netspec.load(..., outputs=[…]))."""
    parser.add_argument("--outputs", metavar="NAMES", help="a feature extractor: return these nodes (top-level "
                        "names or dotted node names, comma-separated), pruned to what they need (default: the "
                        "spec's outputs)")


def select_outputs_flag(shaped, names: str | None):
    """The shaped network cut down to `--outputs` (unchanged without the flag)."""
    if names is None:
        return shaped
    from netspec.passes.outputs import select_outputs

    return select_outputs(shaped, [name.strip() for name in names.split(",")])


def add_max_params_flag(parser: argparse.ArgumentParser) -> None:
    """`--max-params N`, for the commands that build the network's modules (netspec.backends.limits)."""
    from netspec.backends.limits import DEFAULT_MAX_PARAMS

    parser.add_argument("--max-params", type=_param_limit, metavar="N",
                        help=f"refuse to build a network with more parameters (default: {DEFAULT_MAX_PARAMS:,}, "
                             "or fewer when the available memory holds fewer at 4 bytes each)")


def _param_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of parameters, got {text[:40]!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def shaped_for_output(ref: str, overrides: dict, out: Path | None):
    """The shaped network of spec `ref`, after making sure that `out` names neither the spec nor a library it
    imports (writing the output would destroy the input).  Reads each file once."""
    from netspec.backends.output import check_target, same_file_as
    from netspec.errors import display_path
    from netspec.pipeline import read, shape_documents

    documents = read(ref)
    if out is not None:
        clash = same_file_as(out, [doc.path for doc in documents])
        if clash is not None:
            what = "the spec" if clash == documents[0].path else "a library the spec imports"
            raise UsageError(f"-o {out} is {what} ({display_path(clash)}); it is read, never written over: "
                             "choose another output file")
        check_target(out)
    return shape_documents(documents, overrides)


def check_dot_flags(args) -> None:
    """`--max-boxes` and `--timeout`, which draw and view share: Graphviz's bounds."""
    if args.max_boxes < 1:
        raise UsageError(f"--max-boxes must be 1 or more, got {args.max_boxes}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be more than 0 seconds, got {args.timeout:g}")
