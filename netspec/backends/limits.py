"""How large a network the torch backend builds: checked before any module exists, because building one
allocates (and initializes) every weight at once — a valid `linear` with 5·10¹² params asked for 20 TB.

No torch here: the CLI imports these errors to print them, and `validate` stays torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path

# The default limit: 2·10⁹ parameters, 8 GB of float32 weights.  The zoo's largest network (torchvision's VGG-11)
# has 1.3·10⁸, GPT-2 XL has 1.5·10⁹; a CNN spec past this is almost surely a mistake (a missing pool before
# `flatten`), and a network really that large is asked for with --max-params (or `max_params=` in Python).
DEFAULT_MAX_PARAMS = 2_000_000_000
BYTES_PER_PARAM = 4  # float32, as built; batchnorm's running statistics (two per channel) are not counted
CGROUP = Path("/sys/fs/cgroup")


class ModelTooLarge(Exception):
    """The network has more parameters than the limit: a user's choice (exit 2), which a larger limit overrides."""

    def __init__(self, message: str):
        super().__init__(f"{message}; pass max_params=N to raise the limit")
        self.message = message


class OutOfMemory(Exception):
    """Building the network ran out of memory: the machine's failure (exit 1), not the spec's."""


def check_param_count(param_count: int, max_params: int | None = None) -> None:
    """Raises ModelTooLarge when `param_count` exceeds `max_params`, or, when that is None, the default limit:
    the smaller of DEFAULT_MAX_PARAMS and what the memory available now holds at BYTES_PER_PARAM each."""
    found = f"the network has {param_count:,} parameters ({human_size(param_count * BYTES_PER_PARAM)} as float32)"
    if max_params is not None:
        if param_count > max_params:
            raise ModelTooLarge(f"{found}, more than the given limit of {max_params:,}")
        return
    available = available_memory()
    if available is not None and available // BYTES_PER_PARAM < DEFAULT_MAX_PARAMS:
        limit = available // BYTES_PER_PARAM
        why = f"more than the {human_size(available)} of memory available holds ({limit:,})"
    else:
        limit, why = DEFAULT_MAX_PARAMS, f"more than the default limit of {DEFAULT_MAX_PARAMS:,}"
    if param_count > limit:
        raise ModelTooLarge(f"{found}, {why}")


def available_memory() -> int | None:
    """Bytes this process may still allocate, or None when nothing says: /proc/meminfo's MemAvailable (what
    Linux can hand out without swapping), else the free pages os.sysconf counts; lowered to what is left of a
    cgroup v2 memory limit (a container's) when one is set."""
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # no such name on this system
            available = None
    left = _cgroup_left()
    if left is not None:
        available = left if available is None else min(available, left)
    return available


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_left() -> int | None:
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        used = (CGROUP / "memory.current").read_text().strip()
        return None if limit == "max" else max(int(limit) - int(used), 0)
    except (OSError, ValueError):
        return None


def human_size(count: int) -> str:
    """Bytes as people read them: 8.0 GB, 20.0 TB (decimal units)."""
    for unit, scale in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} bytes"
