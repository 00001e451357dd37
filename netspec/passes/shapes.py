"""Network → ShapedNetwork: output shape, parameter count and MACs of every node, without torch.

Every independent shape error is reported; nodes downstream of a failed node are skipped rather than blamed.
`check_expect` compares the result with the spec's `expect:`.
"""

from __future__ import annotations

from types import MappingProxyType

from netspec.errors import Note, SpecError, SpecErrors
from netspec.ir import INPUT, OUTPUT, Facts, Network, Node, Shape, ShapedNetwork, call_notes
from netspec.ops import OPS, ShapeError
from netspec.ops.base import check_size


def infer_node(node: Node, in_shapes: list[Shape]) -> Facts:
    """One node's shape, parameter count and MACs from its op, args and input shapes (raises ShapeError)."""
    op = OPS[node.op]
    shape = tuple(op.shape(node.args, in_shapes))
    check_size(f"{node.op} output", shape)  # before the counts multiply it, and before any message formats it
    return Facts(shape, tuple(in_shapes), op.count_params(node.args, in_shapes), op.macs(node.args, in_shapes, shape))


def infer(network: Network) -> ShapedNetwork:
    """Facts for every node, in build order; every independent shape error is reported."""
    facts: dict[str, Facts] = {}
    errors: list[SpecError] = []
    for name, node in network.nodes.items():
        if node.op == INPUT:
            facts[name] = Facts(network.input_shape, (), 0, 0)
            continue
        if any(source not in facts for source in node.inputs):
            continue  # downstream of a failed node: skipped, not blamed
        ins = [facts[source].shape for source in node.inputs]
        if node.op == OUTPUT:  # the main output's shape: the first (never train-only)
            facts[name] = Facts(ins[0], tuple(ins), 0, 0)
            continue
        try:
            facts[name] = infer_node(node, ins)
        except ShapeError as err:
            errors.append(SpecError(err.message, node.mark, "", err.expected, err.found, err.hint,
                                    (Note(f"at node `{name}`"),) + call_notes(network.scopes, name)))
    if errors:
        raise SpecErrors(errors)
    # MACs are the eval forward's, as torchvision's published figures are: what feeds only train-only outputs
    # (auxiliary heads) does not run then.  Its parameters exist either way and are counted.
    train_only = network.train_only_nodes()
    total = sum(f.macs for f in facts.values())
    return ShapedNetwork(network, MappingProxyType(facts), sum(f.param_count for f in facts.values()),
                         total - sum(facts[name].macs for name in train_only), total)


def check_expect(shaped: ShapedNetwork) -> ShapedNetwork:
    """Raises SpecErrors when the spec's `expect:` disagrees with the inferred network."""
    expect = shaped.network.expect
    marks = expect.marks
    errors = []
    params, output, macs = shaped.param_count, list(shaped.output_shape), shaped.macs
    if expect.params is not None and expect.params != params:
        errors.append(SpecError(f"expect: the network has {params:,} parameters, not {expect.params:,}",
                                marks["params"], "/expect/params", f"{expect.params:,}", f"{params:,}",
                                hint="fix the network, or the expectation if the network is right"))
    if expect.output is not None and list(expect.output) != output:
        errors.append(SpecError(f"expect: the output shape is {output}, not {list(expect.output)}",
                                marks["output"], "/expect/output", str(list(expect.output)), str(output)))
    if expect.macs is not None and not macs_match(expect.macs, macs):
        errors.append(SpecError(f"expect: the network has {format_count(macs, 3)} MACs ({macs:,}), not {expect.macs}",
                                marks["macs"], "/expect/macs", str(expect.macs), f"{macs:,}"))
    if errors:
        raise SpecErrors(errors)
    return shaped


UNITS = {"K": 1e3, "M": 1e6, "G": 1e9}


def macs_match(expected, actual: int) -> bool:
    """An int matches exactly; "1.814G" matches when `actual` prints as 1.814G at that precision."""
    if isinstance(expected, int):
        return expected == actual
    number, unit = expected[:-1], expected[-1]
    decimals = len(number.split(".")[1]) if "." in number else 0
    try:
        return round(actual / UNITS[unit], decimals) == float(number)
    except OverflowError:  # a count beyond 1e308 is no float, and so no "1.5G" figure names it
        return False


def format_count(value: int, decimals: int = 2) -> str:
    for unit in ("G", "M", "K"):
        if abs(value) >= UNITS[unit]:
            try:
                return f"{value / UNITS[unit]:.{decimals}f}{unit}"
            except OverflowError:  # beyond 1e308, no float holds it: 1.00e+400
                from decimal import Decimal

                return f"{Decimal(value):.{decimals}e}"
    return str(value)
