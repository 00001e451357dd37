"""A fixed per-channel scale and shift: the module behind the `affine` op (torchvision's Inception-v3
`transform_input`, or an input normalization written into the network).

The class body imports nothing but `torch` and `nn` (`from torch import nn`): `torch_build.extra_sources` copies its
source verbatim into standalone model files, so it must not use any other module-level name from this file.
"""

from __future__ import annotations

import torch
from torch import nn


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
