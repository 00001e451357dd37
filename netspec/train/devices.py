"""Where a run computes and in what precision: every device choice goes through `pick`, every default through the
small decision functions here, so that they can be tested without the hardware (tests monkeypatch torch.cuda).

    --device auto      CUDA when present, else the CPU
    --device cpu       the CPU
    --device cuda      the current CUDA device; under torchrun, the device of this process's LOCAL_RANK
    --device cuda:N    CUDA device N of the visible ones (CUDA_VISIBLE_DEVICES); one process only
    --device mps       Apple's Metal backend, where torch has it
"""

from __future__ import annotations

import os
import re
from typing import Protocol

import torch


class Ranks(Protocol):
    """What `pick` needs of netspec.train.distributed.Dist (not imported: distributed calls into this module)."""

    @property
    def enabled(self) -> bool: ...

    local_rank: int

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d{1,4})?")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def _refuse(message: str) -> Exception:
    from netspec.train.recipe import RecipeError

    return RecipeError(message)


def valid_choice(choice: str) -> bool:
    return DEVICE_PATTERN.fullmatch(choice) is not None


def pick(choice: str, info: Ranks) -> torch.device:
    """The device `choice` names, checked and made current (CUDA); a RecipeError line when it cannot be used."""
    if not valid_choice(choice):
        raise _refuse(f"--device {choice!r}: not a device; use {DEVICE_CHOICES}")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise _refuse("MPS (Apple's Metal backend) is not available here; use --device cpu or auto")
        return torch.device("mps")
    index = int(choice.split(":")[1]) if ":" in choice else None
    return cuda_device(index, info)


def cuda_device(index: int | None, info: Ranks) -> torch.device:
    """The CUDA device for this process, made current with `torch.cuda.set_device`.  Under torchrun each process
    takes the visible device of its LOCAL_RANK (so ranks never share a GPU); an explicit index is for one
    process only."""
    if not torch.cuda.is_available():
        raise _refuse("CUDA is not available here; use --device cpu or auto")
    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    seen = f"{count} CUDA device{'s' * (count != 1)} visible" + (f" (CUDA_VISIBLE_DEVICES={visible})"
                                                                  if visible is not None else "")
    if info.enabled:
        if index is not None:
            raise _refuse(f"--device cuda:{index} under torchrun: each process takes the GPU of its LOCAL_RANK; "
                          f"use --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs")
        if not 0 <= info.local_rank < count:
            raise _refuse(f"LOCAL_RANK {info.local_rank} has no GPU: {seen}; start at most {count} process"
                          f"{'es' * (count != 1)} per node (torchrun --nproc_per_node)")
        index = info.local_rank
    elif index is None:
        index = torch.cuda.current_device()
    elif index >= count:
        raise _refuse(f"--device cuda:{index}: {seen}, cuda:0 to cuda:{count - 1}")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def has_native_bf16(device: torch.device) -> bool:
    """bf16 in hardware: CUDA compute capability 8.0 on (Ampere); older GPUs (V100, T4) only emulate it, slower
    than fp32.  The CPU's bf16 autocast is always available (used only when asked for)."""
    if device.type != "cuda":
        return device.type == "cpu"
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def default_amp(device: torch.device) -> bool:
    """AMP when the recipe leaves it open: bf16 autocast on CUDA devices with native bf16, fp32 everywhere else
    (an older GPU runs fp32 rather than emulated bf16 or fp16 with a loss scaler)."""
    return device.type == "cuda" and has_native_bf16(device)


def precision_note(device: torch.device, amp: bool, asked: bool | None) -> str:
    """One line on the precision chosen, for the start of a run."""
    if amp:
        note = "bf16 autocast"
        if device.type == "cuda" and not has_native_bf16(device):
            major, minor = torch.cuda.get_device_capability(device)
            note += f" (emulated: compute capability {major}.{minor} has no native bf16; slower than --no-amp)"
        return note
    if device.type == "cuda" and asked is None:
        major, minor = torch.cuda.get_device_capability(device)
        return f"fp32 (compute capability {major}.{minor} has no native bf16; --amp forces emulated bf16)"
    return "fp32"


def cudnn_benchmark(device: torch.device, dynamic_shapes: bool = False) -> bool:
    """cuDNN's autotuner: worth it on CUDA when input shapes repeat (a run has fixed image sizes and at most
    a few batch sizes), so each shape is tuned once; it makes the choice of convolution kernels, and so the
    last bits of the results, vary from run to run."""
    return device.type == "cuda" and not dynamic_shapes
