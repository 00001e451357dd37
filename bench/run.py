"""`make bench`: every benchmark, side by side, into bench/results.json and docs/benchmarks.md.

    .venv/bin/python bench/run.py                  # all sections (< 10 minutes on a 2-core CPU)
    .venv/bin/python bench/run.py --quick          # smoke run: tiny sizes, few repeats; docs untouched
    .venv/bin/python bench/run.py --only scaling   # one section (overhead, frontend, scaling, train); repeatable

Sections: overhead (item 1, bench/overhead.py in a worker process that may use a torchvision venv), frontend
(item 2), scaling (item 3), train (item 4).  Item 5 is bench/gpu.py, for a CUDA machine, run by hand.
A partial run (--only) keeps the other sections of an existing results file, so the docs stay complete.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]
# As `netspec train` does (netspec/cli/train.py): OpenMP threads that sleep rather than spin while waiting, or a
# shared machine slows 2-thread runs down many times over.  Set before torch loads; the workers inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import report  # noqa: E402

SECTIONS = ("overhead", "frontend", "scaling", "train")
TV_CANDIDATES = ("NETSPEC_BENCH_TV_PYTHON", str(Path(__file__).resolve().parent.parent / ".tvenv" / "bin" / "python"))


def machine() -> dict:
    """Where the numbers come from: CPU, cores, Python, torch, and the checkout's commit."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "commit": commit.stdout.strip() + (" + uncommitted changes" if dirty.strip() else ""),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "load_before": _loadavg()}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _loadavg() -> list[float] | None:
    """The 1/5/15-minute load average: a busy machine shows here, and explains wide min–max ranges."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def torchvision_python() -> str | None:
    """An interpreter that imports torchvision and netspec's dependencies: this one, $NETSPEC_BENCH_TV_PYTHON or
    the checkout's .tvenv (docs/zoo.md).  None means the overhead section uses bench/reference_models.py in this
    interpreter.  A candidate that does not exist is skipped before it is run."""
    candidates = [sys.executable, os.environ.get(TV_CANDIDATES[0]), TV_CANDIDATES[1]]
    for python in filter(None, candidates):
        if not Path(python).exists():
            continue
        probe = subprocess.run([python, "-c", "import torchvision, yaml, jsonschema, networkx"], capture_output=True)
        if probe.returncode == 0:
            return python
    return None


def run_overhead(quick: bool, baseline: str) -> dict:
    python = torchvision_python() if baseline == "torchvision" else None
    cmd = [python or sys.executable, str(BENCH / "overhead.py")]
    cmd += ["--models", "resnet18", "--repeats", "3", "--size", "32", "--budget", "0"] if quick else ["--ablation"]
    if python is None:
        cmd += ["--no-torchvision"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"bench/overhead.py failed (exit {proc.returncode})")
    result = json.loads(proc.stdout)
    result["python"] = report.interpreter(cmd[0])
    return result


def run_frontend(quick: bool) -> dict:
    import frontend

    return frontend.run(runs=2 if quick else 7, with_torchinfo=not quick)


def run_scaling(quick: bool, plot: Path | None) -> dict:
    import scaling

    sizes = [10, 30, 100] if quick else [10, 30, 100, 300, 1000]
    result = scaling.run(sizes, repeats=1 if quick else 3, plot_path=plot)
    if "plot" in result and plot.resolve().is_relative_to(ROOT):
        result["plot"] = str(plot.resolve().relative_to(ROOT))  # the JSON names files in the checkout portably
    return result


def run_train(quick: bool) -> dict:
    import trainloop

    return trainloop.run(quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, few repeats")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results.json; "
                                                  "bench/results-quick.json with --quick)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="the Markdown file whose bench section is rewritten (never by --quick)")
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only")
    parser.add_argument("--plot", type=Path, help="scaling plot PNG (default docs/scaling.png; none with --quick)")
    parser.add_argument("--baseline", choices=("torchvision", "reference"), default="torchvision",
                        help="item 1's hand-written side: torchvision where importable, or bench/reference_models.py")
    args = parser.parse_args(argv)
    # A smoke run must never overwrite the real numbers: its own JSON, no docs, no plot unless asked.
    out = args.out or BENCH / ("results-quick.json" if args.quick else "results.json")
    plot = args.plot or (None if args.quick else ROOT / "docs" / "scaling.png")
    write_docs = not (args.quick or args.no_docs)
    sections = args.only or list(SECTIONS)
    previous = json.loads(out.read_text()) if out.exists() and args.only else {}
    results = {"machine": machine(), "quick": args.quick, "sections": dict(previous.get("sections", {}))}
    runners = {"overhead": lambda: run_overhead(args.quick, args.baseline),
               "frontend": lambda: run_frontend(args.quick),
               "scaling": lambda: run_scaling(args.quick, plot),
               "train": lambda: run_train(args.quick)}
    total = time.perf_counter()
    for name in sections:
        start = time.perf_counter()
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        results["sections"][name] = runners[name]()
        results["sections"][name]["seconds"] = round(time.perf_counter() - start, 1)
        print(f"bench: {name} done in {results['sections'][name]['seconds']} s", file=sys.stderr, flush=True)
    results["seconds"] = round(time.perf_counter() - total, 1)
    results["machine"]["load_after"] = _loadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if write_docs:
        report.update(args.docs, results)
    print(f"bench: wrote {out}" + (f" and {args.docs}" if write_docs else "") + f" in {results['seconds']} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
