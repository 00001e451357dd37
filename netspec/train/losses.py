"""The training loss of a network with several outputs: cross-entropy on the main output plus, weighted by the
recipe's `aux_weight`, on each auxiliary one (GoogLeNet's paper: 0.3 each).

In training a network with auxiliary heads returns a named tuple (`GooglenetOutputs(logits, aux_logits2,
aux_logits1)`); its first field is the main output (the spec language requires it: docs/spec-format.md), the others
are auxiliary.  A network with one output returns a tensor, and its loss is the plain cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def main_output(outputs) -> torch.Tensor:
    """The main output (the logits accuracy is measured on) of what the model returned."""
    return outputs if isinstance(outputs, torch.Tensor) else outputs[0]


def classification_loss(outputs, labels: torch.Tensor, label_smoothing: float, aux_weight: float):
    """(the loss to minimize, the main logits, {auxiliary output's name: its own cross-entropy, detached})."""
    loss = lambda logits: F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    logits = main_output(outputs)
    total = loss(logits)
    if isinstance(outputs, torch.Tensor):
        return total, logits, {}
    aux = {name: loss(value) for name, value in zip(outputs._fields[1:], outputs[1:])}
    for value in aux.values():
        total = total + aux_weight * value
    return total, logits, {name: value.detach() for name, value in aux.items()}
