"""`netspec lint`: findings that are not errors, over the shaped network.

Each rule (their names and severities are grammar.LINT_RULES, which specs name in `lint: {ignore: [...]}`) yields
one `Hit` per node; hits are then grouped by place: a rule firing on a line that a template or a repeat
expands 80 times is one finding with 80 instances, not 80 findings.  A hit is silenced where its node sits in an
item (or a network) whose `lint:` ignores the rule.  A cycle, which expansion cannot create, is an error: it is
checked so that a hand-built or transformed network is caught too.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from netspec.errors import ERROR, Mark, Note, SpecError, to_json
from netspec.frontend.grammar import LINT_RULES
from netspec.ir import OUTPUT, Network, Node, ShapedNetwork
from netspec.ops import OPS
from netspec.passes import shapes

SHOWN_INSTANCES = 8          # instances named under one finding; the rest are counted
CHANNEL_MULTIPLE = 8
# Ops a classifier's logits pass through unchanged in meaning, from the last layer to the output.
_PASS_THROUGH = frozenset({"flatten", "identity", "dropout", "global_avgpool", "adaptive_avgpool", "avgpool",
                           "maxpool"})
_WEIGHTED = ("conv", "conv_transpose", "linear")


@dataclass(frozen=True)
class Instance:
    node: str        # the node (for a dead branch, its first node)
    detail: str = ""  # what differs between instances of one finding (sizes, channel counts)

    def __str__(self) -> str:
        return f"{self.node} ({self.detail})" if self.detail else self.node


@dataclass(frozen=True)
class Hit:
    """One rule firing at one node, before grouping."""

    rule: str
    message: str
    node: Node
    detail: str = ""
    hint: str | None = None
    mark: Mark | None = None    # where to report it, when not at the node (a dead branch: its item)
    label: str | None = None    # the instance's name, when not the node's (a dead branch: its scope)

    @property
    def place(self) -> Mark:
        return self.mark or self.node.mark


@dataclass(frozen=True)
class Finding:
    """A rule's finding at one place in the source, with every node it fires on there."""

    rule: str
    severity: str
    message: str
    mark: Mark
    instances: tuple[Instance, ...]
    hint: str | None = None
    silenced: bool = False

    def error(self) -> SpecError:
        """As a located SpecError, for `errors.render`: the rule in brackets, the instances as a note."""
        count = len(self.instances)
        shown = ", ".join(map(str, self.instances[:SHOWN_INSTANCES]))
        more = f", … {count - SHOWN_INSTANCES} more" if count > SHOWN_INSTANCES else ""
        where = f"in {count} instances: " if count > 1 else "in: "
        hint = self.hint if self.rule == "cycle" else \
            (self.hint + "; " if self.hint else "") + f"if intended: `lint: {{ignore: [{self.rule}], reason: …}}`"
        return SpecError(f"{self.message} [{self.rule}]", self.mark, hint=hint, notes=(Note(where + shown + more),),
                         severity=self.severity)

    def first_line(self) -> str:
        return self.error().first_line()

    def to_json(self) -> dict:
        return {**to_json(self.error()), "message": self.message, "rule": self.rule, "count": len(self.instances),
                "instances": [{"node": i.node, "detail": i.detail or None} for i in self.instances]}


def lint(network: ShapedNetwork | Network, silenced: bool = False) -> list[Finding]:
    """The findings, grouped by place, in source order (the spec's file first).  `silenced`: also those a
    `lint:` silences (marked `silenced`)."""
    net = network.network if isinstance(network, ShapedNetwork) else network
    if not nx.is_directed_acyclic_graph(net.graph):
        cycle = nx.find_cycle(net.graph)
        node = net.nodes[cycle[0][0]]
        return [Finding("cycle", ERROR, "the graph has a cycle: " + " → ".join(src for src, _ in cycle), node.mark,
                        (Instance(node.name),))]
    shaped = network if isinstance(network, ShapedNetwork) else shapes.infer(network)
    hits = [hit for rule in RULES for hit in rule(shaped)]
    findings = _grouped(hits)
    order = {net.file: 0}
    findings.sort(key=lambda f: (order.get(f.mark.file, 1), f.mark.file, f.mark.line, f.mark.col, f.rule))
    return [f for f in findings if silenced or not f.silenced]


def _grouped(hits: list[Hit]) -> list[Finding]:
    """Hits of one rule at one place, with one message, as one finding; it is silenced when every hit is (a
    template called once with `lint:` and once without is still reported, for the call without)."""
    groups: dict[tuple, list[Hit]] = {}
    for hit in hits:
        groups.setdefault((hit.rule, hit.place, hit.message), []).append(hit)
    findings = []
    for (rule, mark, message), group in groups.items():
        loud = [h for h in group if rule not in h.node.lint_ignore]
        shown = loud or group
        findings.append(Finding(rule, LINT_RULES[rule][0], message, mark,
                                tuple(Instance(h.label or h.node.name, h.detail) for h in shown), group[0].hint, not loud))
    return findings


# ── the rules ─────────────────────────────────────────────────────────────────────────────────────────────────

def _consumers(net: Network, name: str) -> list[Node]:
    return [net.nodes[n] for n in net.graph.successors(name)]


def _producer(net: Network, node: Node) -> Node:
    return net.nodes[node.inputs[0]]


def _family(node: Node) -> str | None:
    return OPS[node.op].family if node.is_op else None


def bias_before_batchnorm(shaped: ShapedNetwork):
    net = shaped.network
    for node in net.op_nodes():
        if node.op in _WEIGHTED and node.args.get("bias"):
            after = _consumers(net, node.name)
            if after and all(n.op == "batchnorm" for n in after):
                yield Hit("bias-before-batchnorm", f"the bias of this `{node.op}` is cancelled by the BatchNorm "
                          "right after it, which subtracts the mean", node,
                          hint="give it `bias: false` (as torchvision does)")


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def dropped_pixels(shaped: ShapedNetwork):
    """A window of (dilated) size k moved by stride s over a side of n pixels padded by p reads up to
    (out − 1)·s + k; PyTorch's floor division drops what lies beyond, unless it is padding.  With k < s the
    windows skip s − k pixels between them by design, so a gap up to that long at the end is the same pattern."""
    for node in shaped.network.op_nodes():
        if node.op not in ("conv", "maxpool", "avgpool"):
            continue
        facts = shaped.facts[node.name]
        if len(facts.in_shapes[0]) != 3 or node.args.get("padding") == "same":  # "same" is for stride 1 only
            continue
        kernel = _pair(node.args["kernel"])
        stride = _pair(node.args["stride"] if node.args.get("stride") is not None else node.args["kernel"])
        padding = _pair(0 if node.args.get("padding") == "valid" else node.args.get("padding", 0))
        dilation = _pair(node.args.get("dilation", 1))
        dropped = []
        for axis in range(2):
            size, out = facts.in_shapes[0][1 + axis], facts.shape[1 + axis]
            reach = dilation[axis] * (kernel[axis] - 1) + 1
            gap = max(0, stride[axis] - reach)
            dropped.append(max(0, size + padding[axis] - (out - 1) * stride[axis] - reach - gap))
        if any(dropped):
            rows, cols = dropped
            lost = " and ".join((f"{n} {word}s" if n > 1 else word) for n, word in ((rows, "row"), (cols, "column"))
                                if n)
            (_, h, w), (_, oh, ow) = facts.in_shapes[0], facts.shape
            yield Hit("dropped-pixels", f"this `{node.op}`'s windows never reach the last rows or columns of its "
                      "input: they are silently dropped", node, f"{h}×{w} → {oh}×{ow} drops its last {lost}",
                      hint="pad so that size + 2·padding − kernel is a multiple of the stride"
                           + (", or use `ceil_mode: true`" if node.op != "conv" else ""))


def unused(shaped: ShapedNetwork):
    """Nodes that do not reach the output, one hit per dead branch (a connected set of them), at its first node:
    the nodes of a dead branch use each other, so only the branch as a whole is unused."""
    net = shaped.network
    used = nx.ancestors(net.graph, OUTPUT) | {OUTPUT}
    dead = [node.name for node in net.op_nodes() if node.name not in used]
    if not dead:
        return
    order = {name: i for i, name in enumerate(net.nodes)}
    inside: dict[str, int] = {}   # scope path → the number of nodes in it
    for name in net.nodes:
        parts = name.split(".")
        for i in range(1, len(parts)):
            inside[".".join(parts[:i])] = inside.get(".".join(parts[:i]), 0) + 1
    for part in sorted(nx.weakly_connected_components(net.graph.subgraph(dead)), key=lambda c: min(map(order.get, c))):
        names = sorted(part, key=order.get)
        first = net.nodes[names[0]]
        if len(names) == 1:
            yield Hit("unused", f"the output of this `{first.op}` is never used", first,
                      hint="remove it, or name it in a later `from:`")
            continue
        prefix = _common_scope(names)
        whole = prefix in net.scopes and len(names) == inside.get(prefix)
        yield Hit("unused", "a dead branch: none of its nodes reaches the output", first,
                  f"{len(names)} nodes, {names[0]} … {names[-1]}", hint="remove the branch, or name its last node "
                  "in a later `from:`", mark=net.scopes[prefix].mark if whole else None,
                  label=prefix if whole else None)


def _common_scope(names: list[str]) -> str:
    parts = [name.split(".")[:-1] for name in names]
    common = []
    for column in zip(*parts):
        if len(set(column)) > 1:
            break
        common.append(column[0])
    return ".".join(common)


def double_activation(shaped: ShapedNetwork):
    net = shaped.network
    for node in net.op_nodes():
        if _family(node) == "activation" and _family(_producer(net, node)) == "activation":
            before = _producer(net, node)
            yield Hit("double-activation", f"two activations in a row: `{before.op}` then `{node.op}`", node,
                      hint="drop one of them")


def dropout_before_batchnorm(shaped: ShapedNetwork):
    """Dropout whose output reaches a BatchNorm through linear steps only (conv, linear, pooling, reshapes),
    which carry its training-time variance to the BatchNorm's statistics."""
    net = shaped.network
    feeds = _feeds_batchnorm(net)
    for node in net.op_nodes():
        if node.op == "dropout" and feeds[node.name]:
            yield Hit("dropout-before-batchnorm", "dropout feeds BatchNorm, whose running statistics then differ "
                      "between training and evaluation (the variance shift)", node,
                      hint="put the dropout after the last BatchNorm, e.g. before the classifier")


def _feeds_batchnorm(net: Network) -> dict[str, bool]:
    """For every node, whether its output reaches a BatchNorm through linear steps only; one pass over the nodes
    in reverse build order (a node's consumers come after it)."""
    feeds: dict[str, bool] = {}
    for name in reversed(list(net.nodes)):
        feeds[name] = any(n.op == "batchnorm" or ((n.op in _WEIGHTED or n.op in _PASS_THROUGH) and feeds[n.name])
                          for n in _consumers(net, name))
    return feeds


def _logit_sources(net: Network, through: frozenset[str] = _PASS_THROUGH) -> list[Node]:
    """The nodes a classifier's logits come from: from the output back through ops that keep them logits
    (flatten, pooling, dropout)."""
    found, todo, seen = [], list(net.nodes[OUTPUT].inputs), set()
    while todo:
        name = todo.pop()
        if name in seen or not net.nodes[name].is_op:
            continue
        seen.add(name)
        node = net.nodes[name]
        if node.op in through:
            todo.extend(node.inputs)
        else:
            found.append(node)
    return found


def activation_on_logits(shaped: ShapedNetwork):
    """A network with a 1-D output is a classifier; `netspec train` trains it with cross-entropy, which takes
    raw scores (it applies log-softmax itself)."""
    if len(shaped.output_shape) != 1:
        return
    for node in _logit_sources(shaped.network):
        if _family(node) == "activation":
            why = "the loss applies log-softmax itself, so the scores are squashed twice" if node.op == "softmax" \
                else "it bounds the scores the loss expects raw"
            yield Hit("activation-on-logits", f"`{node.op}` on the logits of a classifier trained with "
                      f"cross-entropy: {why}", node, hint="end with the last conv or linear; apply softmax when "
                      "reading predictions, not in the network")


def unaligned_channels(shaped: ShapedNetwork):
    net = shaped.network
    activations = frozenset(name for name, op in OPS.items() if op.family == "activation")
    logits = {n.name for n in _logit_sources(net, _PASS_THROUGH | activations)}  # the classifier's own width
    for node in net.op_nodes():
        if node.op in _WEIGHTED and node.name not in logits and node.args["out"] % CHANNEL_MULTIPLE:
            yield Hit("unaligned-channels", f"output channels not a multiple of {CHANNEL_MULTIPLE}: GPU kernels "
                      f"(tensor cores) run fastest on multiples of {CHANNEL_MULTIPLE}", node,
                      f"{node.args['out']} channels")


RULES = (bias_before_batchnorm, dropped_pixels, unused, double_activation, dropout_before_batchnorm,
         activation_on_logits, unaligned_channels)
assert {rule.__name__.replace("_", "-") for rule in RULES} == set(LINT_RULES), "every rule of LINT_RULES, once"
