"""BatchNorm written from the course's formulas in plain tensor ops.

The formulas are those of the "Batch Normalization" chapter of Dive into Deep Learning
(https://d2l.ai/chapter_convolutional-modern/batch-norm.html).

The class body imports nothing but `torch` and `nn` (`from torch import nn`): `torch_build.extra_sources` copies its
source verbatim into standalone model files, so it must not use any other module-level name from this file.
"""

from __future__ import annotations

import torch
from torch import nn


class FormulaBatchNorm(nn.Module):
    """Batch normalization as the course writes it, for [N, F] (num_dims=2) or [N, C, H, W] (num_dims=4) inputs.

    Training, per feature (per channel over N, H, W for images):
        μ = mean(x),  σ² = mean((x − μ)²)  (biased),  x̂ = (x − μ) / √(σ² + ε),  y = γ·x̂ + β
        moving = (1 − momentum)·moving + momentum·batch   (momentum 0.1 is the course's 0.9/0.1 rule)
    Evaluation normalizes with the moving statistics instead of the batch's.

    Variance convention: `running_var` accumulates the **biased** batch variance σ² (the course's convention).
    PyTorch's nn.BatchNorm*d normalizes with the biased variance too, but accumulates the *unbiased* one
    (σ²·N/(N−1), N = elements per feature), so after one training step from the initial state
        this layer:  running_var = 0.9·1 + 0.1·σ²      nn.BatchNorm:  running_var = 0.9·1 + 0.1·σ²·N/(N−1).
    Training outputs, gradients and `running_mean` match nn.BatchNorm exactly; eval outputs match when both hold
    the same statistics.

    Names follow nn.BatchNorm (`weight` = γ, `bias` = β, buffers `running_mean`, `running_var`) so state_dicts
    look alike; there is no `num_batches_tracked` (momentum is always a number here).
    """

    def __init__(self, num_features: int, num_dims: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True):
        super().__init__()
        if num_dims not in (2, 4):
            raise ValueError(f"num_dims must be 2 ([N, F]) or 4 ([N, C, H, W]), got {num_dims}")
        self.num_features = num_features
        self.num_dims = num_dims
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # Buffers, not plain attributes: checkpoints keep them and .to(device) moves them.
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Everything below is decided by num_dims and self.training (plain Python values), never by tensor
        # values, so torch.fx symbolic tracing, torch.jit.trace and torch.compile see one straight-line graph.
        reduce_dims = (0,) if self.num_dims == 2 else (0, 2, 3)
        per_feature = (1, -1) if self.num_dims == 2 else (1, -1, 1, 1)  # broadcasts a [F] vector against x
        if self.training:
            mean = x.mean(dim=reduce_dims, keepdim=True)
            var = ((x - mean) ** 2).mean(dim=reduce_dims, keepdim=True)  # biased: divides by N, not N − 1
            self._update_moving(mean.reshape(-1), var.reshape(-1))
        else:
            mean = self.running_mean.reshape(per_feature)
            var = self.running_var.reshape(per_feature)
        x_hat = (x - mean) / torch.sqrt(var + self.eps)
        if not self.affine:
            return x_hat
        return self.weight.reshape(per_feature) * x_hat + self.bias.reshape(per_feature)

    def _update_moving(self, batch_mean: torch.Tensor, batch_var: torch.Tensor) -> None:
        # detach() as well as no_grad(): torch.fx records the in-place ops but not the no_grad context, and
        # a buffer updated in place from a grad-requiring tensor would itself join the autograd graph.
        with torch.no_grad():
            keep = 1.0 - self.momentum
            self.running_mean.mul_(keep).add_(batch_mean.detach(), alpha=self.momentum)
            self.running_var.mul_(keep).add_(batch_var.detach(), alpha=self.momentum)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")
