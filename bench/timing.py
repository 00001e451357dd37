"""Side-by-side timing: A and B alternate in one process, and what is reported is the ratio A/B per repeat.

Absolute times on a shared 2-core machine drift by tens of percent over a minute; the ratio of two runs taken
back to back drifts far less.  Each round times every contestant once (in rotating order, so none always runs
on a warmer cache) and yields one ratio per contestant; the summary is min/median/max over the rounds.

Two clocks run together: wall time, and the CPU time of the calling thread (`time.thread_time`).  With one
torch thread all of PyTorch's CPU work — forward, autograd's backward, the optimizer — runs on the calling
thread, so its CPU time is the work done, unaffected by the minutes other processes hold the cores.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def spread(values: list[float], digits: int = 4) -> dict:
    """min/median/max (and n) of a list of numbers, rounded for the JSON."""
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits), "n": len(values)}


def time_call(fn: Callable[[], object], inner: int = 1) -> tuple[float, float]:
    """(wall seconds, thread CPU seconds) per call of `fn`, averaged over `inner` back-to-back calls."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - wall) / inner, (time.thread_time() - cpu) / inner


def calibrate(fn: Callable[[], object], target_s: float, max_inner: int = 50) -> int:
    """How many back-to-back calls of `fn` take about `target_s` (at least 1): one repeat's inner loop."""
    one = min(time_call(fn)[0] for _ in range(2))
    return max(1, min(max_inner, round(target_s / max(one, 1e-9))))


def alternate(fns: dict[str, Callable[[], object]], reference: str, repeats: int, warmup: int = 2,
              inner: int = 1, budget_s: float = 0.0, max_repeats: int = 400) -> dict:
    """Runs every function in `fns` once per round, the order rotating from round to round, after `warmup`
    rounds: at least `repeats` rounds, and on until `budget_s` seconds have passed (short samples, many of them:
    a disturbance spoils one sample, and the median ignores it).  For each function other than `reference`:
    its per-round ratio to `reference`, on both clocks."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    start = time.perf_counter()
    rounds = 0
    while rounds < repeats or (time.perf_counter() - start < budget_s and rounds < max_repeats):
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(time_call(fns[name], inner))
        rounds += 1
    out = {"inner": inner, "repeats": rounds}
    for name in names:
        if name == reference:
            continue
        out[name] = {}
        for clock, k in (("cpu", 1), ("wall", 0)):
            mine, theirs = [t[k] for t in samples[name]], [t[k] for t in samples[reference]]
            # The ratio of the two fastest samples is the least disturbed by other processes (timeit's reasoning).
            out[name][clock] = {"ratio": spread([x / y for x, y in zip(mine, theirs)]),
                                "best_ratio": round(min(mine) / min(theirs), 4),
                                "a_s": spread(mine, 6), "b_s": spread(theirs, 6)}
    return out
