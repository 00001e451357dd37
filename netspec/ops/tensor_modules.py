"""The modules of netspec's tensor ops that torch.nn does not have: Permute, Reshape, Chunk and ChannelLayerNorm.

Each class body uses nothing but `torch` and `nn` (`from torch import nn`): `torch_build.extra_sources` copies
its source verbatim into standalone model files.  Their dims and shapes include the batch dimension (dim 0),
as PyTorch's own calls do; the op entries translate from the spec's batch-less dims.
"""

from __future__ import annotations

import torch
from torch import nn


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
