"""netspec's own nn.Module classes: ops whose torch side no torch.nn class gives (FormulaBatchNorm, larger and
with its own documentation, lives in formula_bn.py).

Op builders import this module only when a module is wanted, so the op table stays torch-free.  Each class body
uses nothing but `torch` and `nn`: `torch_build.extra_sources` copies its source verbatim into standalone model
files, which import exactly those two.
"""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth, which torchvision's EfficientNet and ConvNeXt put on their residual branch.

    In training, with probability p, zeroes one example (mode "row": a Bernoulli draw per example) or the whole
    batch (mode "batch": one draw) and divides what it keeps by 1 − p, so the expectation is the input; in eval,
    and for p = 0, it returns its input.  The random draw is torchvision's own — `bernoulli_` on an `empty`
    tensor of the batch's dtype and device — so under one `torch.manual_seed` both give the same masks.
    """

    def __init__(self, p: float, mode: str):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
