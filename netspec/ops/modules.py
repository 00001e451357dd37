"""netspec's own nn.Module classes: ops whose torch side no torch.nn class gives (FormulaBatchNorm, larger and
with its own documentation, lives in formula_bn.py).  ChannelAffine is the `affine` op's fixed per-channel scale
and shift (torchvision's Inception-v3 `transform_input`).  The tensor ops' modules (Permute, Reshape, Chunk) take
dims and shapes of the batched tensor, as PyTorch's own calls do; the op entries translate from the spec's
batch-less dims.

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


class Permute(nn.Module):
    """`x.permute(*dims)`, as torchvision's `Permute`: dims of the batched tensor, the batch staying first."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Reshape(nn.Module):
    """`x.reshape(batch, *shape)`: each example to `shape`, where one -1 is inferred (a copy only where the input
    is not contiguous, as after a permute)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Chunk(nn.Module):
    """`x.chunk(parts, dim)`: a tuple of `parts` equal views (dim of the batched tensor)."""

    def __init__(self, parts: int, dim: int):
        super().__init__()
        self.parts, self.dim = parts, dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x.chunk(self.parts, self.dim)

    def extra_repr(self) -> str:
        return f"parts={self.parts}, dim={self.dim}"


class ChannelLayerNorm(nn.LayerNorm):
    """Layer normalization over the channels of an [N, C, ...] tensor at every position, computed as
    torchvision's `LayerNorm2d` computes it (channels moved last, normalized, moved back); its weight and bias
    are [C], as nn.LayerNorm(C) has them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = list(range(x.dim()))
        last = [0] + last[2:] + [1]
        x = x.permute(*last)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        back = [0, x.dim() - 1] + list(range(1, x.dim() - 1))
        return x.permute(*back)


class ChannelAffine(nn.Module):
    """y = x·scale + shift per channel (dim 1), with constants fixed when the network is built.

    The constants are non-persistent buffers: not parameters (nothing learns them), not in the state_dict (a
    checkpoint holds what training changes, and torchvision's Inception-v3 keys load strictly), yet moved and
    cast with the module (`.to(device)`, `.half()`).
    """

    def __init__(self, scale: list[float], shift: list[float], num_dims: int):
        super().__init__()
        per_channel = (1, -1) + (1,) * (num_dims - 2)  # broadcasts a [C] vector against x
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).reshape(per_channel), persistent=False)
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).reshape(per_channel), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def extra_repr(self) -> str:
        return f"scale={self.scale.flatten().tolist()}, shift={self.shift.flatten().tolist()}"
