"""Item 2 — front-end latency: cold-process `netspec validate | summary | draw -o x.dot`, and torchinfo.

A cold process is what a user waits for at the shell: interpreter start, imports, the work, exit.  Each command
runs `runs` times, alternating with the other commands and with the baselines, so a noisy minute on a shared
machine hits all of them alike.  Baselines: a bare `python -c pass` (the floor any Python CLI pays) and, where
a venv has both torchvision and torchinfo, torchinfo's summary of the same torchvision model in a cold process
(and, warm, the two summaries in one process: `python bench/frontend.py --warm-worker`).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SPECS = {"googlenet": "specs/imagenet/googlenet.yaml", "densenet121": "specs/imagenet/densenet121.yaml"}
TORCHINFO_CODE = ("import torchvision, torchinfo; m = torchvision.models.{model}(num_classes=1000{extra}); "
                  "torchinfo.summary(m, input_size=(1, 3, 224, 224), depth=10, verbose=0)")
GOOGLENET_EXTRA = ", aux_logits=False, init_weights=True"


def wall(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds from spawn to exit, CPU seconds the child used).  Wall time is what a user waits for; CPU
    time (user + system) barely moves when other processes compete for the cores, so it is reported too.
    A failing command is an error, not a fast result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def netspec_has(command: str) -> bool:
    """Whether this netspec's CLI has `command` (draw is optional: it arrived after the core)."""
    help_text = subprocess.run([sys.executable, "-m", "netspec", "--help"], cwd=ROOT, capture_output=True,
                               text=True).stdout
    return any(line.split()[:1] == [command] for line in help_text.splitlines())


def commands(tmp: Path) -> dict[str, list[str]]:
    """Every cold command to time, by label."""
    netspec = [sys.executable, "-m", "netspec"]
    cmds = {"python -c pass": [sys.executable, "-c", "pass"]}
    for model, spec in SPECS.items():
        if not (ROOT / spec).exists():
            continue
        cmds[f"validate {model}"] = netspec + ["validate", spec]
        cmds[f"summary {model}"] = netspec + ["summary", spec]
        if netspec_has("draw"):
            cmds[f"draw {model}"] = netspec + ["draw", spec, "-o", str(tmp / f"{model}.dot")]
    return cmds


def torchinfo_python() -> str | None:
    """An interpreter where torchvision and torchinfo both import: this one, $NETSPEC_BENCH_TV_PYTHON, or the
    checkout's .tvenv (docs/zoo.md).  None when there is none (the comparison is then skipped, and says so)."""
    tvenv = Path(__file__).resolve().parent.parent / ".tvenv" / "bin" / "python"
    candidates = [sys.executable, os.environ.get("NETSPEC_BENCH_TV_PYTHON"), str(tvenv)]
    for python in filter(None, candidates):
        if Path(python).exists() and subprocess.run([python, "-c", "import torchvision, torchinfo"],
                                                    capture_output=True).returncode == 0:
            return python
    return None


def torchinfo_commands(python: str) -> dict[str, list[str]]:
    return {f"torchinfo {model}": [python, "-c", TORCHINFO_CODE.format(
        model=model, extra=GOOGLENET_EXTRA if model == "googlenet" else "")] for model in SPECS}


def run(runs: int, with_torchinfo: bool, torchinfo_runs: int = 3) -> dict:
    """`runs` cold runs of every netspec command; torchinfo (seconds per cold run, mostly importing torch) takes
    part in the first `torchinfo_runs` rounds only, to keep the whole bench within its time budget."""
    with tempfile.TemporaryDirectory(prefix="netspec-bench-") as tmp:
        cmds = commands(Path(tmp))
        python = torchinfo_python() if with_torchinfo else None
        slow = torchinfo_commands(python) if python else {}
        for cmd in [*cmds.values(), *slow.values()]:  # once untimed: page cache, .pyc files
            wall(cmd, ROOT)
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label in [*cmds, *slow]}
        for index in range(runs):
            active = {**cmds, **(slow if index < torchinfo_runs else {})}
            order = list(active) if index % 2 == 0 else list(reversed(active))
            for label in order:
                samples[label].append(wall(active[label], ROOT))
    result = {"runs": runs, "python": report.interpreter(sys.executable),
              "cold_s": {label: summarize([w for w, _ in values]) for label, values in samples.items()},
              "cold_cpu_s": {label: summarize([c for _, c in values]) for label, values in samples.items()}}
    if python:
        result["torchinfo_python"] = report.interpreter(python)
        result["torchinfo_over_summary"] = {
            model: ratio_spread([w for w, _ in samples[f"torchinfo {model}"]],
                                [w for w, _ in samples[f"summary {model}"]]) for model in SPECS}
        result["warm"] = warm_comparison(python, runs)
    else:
        result["torchinfo"] = "skipped: no interpreter with both torchvision and torchinfo"
    return result


def summarize(values: list[float]) -> dict:
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4),
            "max": round(max(values), 4), "n": len(values)}


def ratio_spread(slow: list[float], fast: list[float]) -> dict:
    """Per-run ratios slow/fast of samples taken in the same round."""
    return summarize([s / f for s, f in zip(slow, fast)])


def warm_comparison(python: str, runs: int) -> dict | str:
    """netspec.summary vs torchinfo.summary in one warm process (the torchvision venv, which has netspec's deps)."""
    proc = subprocess.run([python, str(Path(__file__)), "--warm-worker", str(runs)], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
    return json.loads(proc.stdout)


def warm_worker(runs: int) -> dict:
    """In-process: netspec.summary(spec) from the YAML file vs torchinfo.summary(model) of a model already built
    (torchinfo's best case: construction excluded), alternating."""
    sys.path.insert(0, str(ROOT))
    import torchinfo
    import torchvision

    import netspec

    # Bound before the first call: in netspec before 6ea580b, importing the submodule netspec.summary rebound the
    # package attribute `netspec.summary` from the function to that module.
    summary = netspec.summary
    out = {}
    for model, spec in SPECS.items():
        extra = {"aux_logits": False, "init_weights": True} if model == "googlenet" else {}
        net = getattr(torchvision.models, model)(num_classes=1000, **extra)
        ours, theirs = [], []
        for _ in range(runs + 1):  # the first round warms both up and is dropped
            start = time.perf_counter()
            summary(ROOT / spec)
            middle = time.perf_counter()
            torchinfo.summary(net, input_size=(1, 3, 224, 224), depth=10, verbose=0)
            ours.append(middle - start)
            theirs.append(time.perf_counter() - middle)
        out[model] = {"netspec_s": summarize(ours[1:]), "torchinfo_s": summarize(theirs[1:]),
                      "ratio_torchinfo_over_netspec": ratio_spread(theirs[1:], ours[1:])}
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["--warm-worker"]:
    print(json.dumps(warm_worker(int(sys.argv[2]))))
