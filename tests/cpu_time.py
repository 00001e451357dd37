"""CPU time, not wall time, for tests that bound how long something takes: other jobs on a busy machine slow
the clock on the wall, not the work done here.  Limits are guards against work that runs away (an exponential
walk, a 10**9-element string), set generously, several times what the work takes.

- `cpu_limit(seconds)`: a block of test code in this process.  Past the limit, SIGPROF interrupts the block and
  the test fails instead of hanging.  Main thread only (signals), which is where pytest runs tests.
- `run_cli_cpu(*args)`: `python -m netspec ARGS` as `conftest.run_cli` runs it, with the CPU time of that one
  process, measured as tests/test_bounds.py does (its docstring says why a wrapper process is needed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, Run
from test_bounds import WRAPPER


@dataclass(frozen=True)
class CpuRun(Run):
    cpu: float = 0.0  # user + sys seconds of the netspec process alone


def run_cli_cpu(*args: str, cwd: Path = REPO, timeout: float = 60) -> CpuRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["COLUMNS"] = "200"
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "usage.json"
        done = subprocess.run([sys.executable, "-c", WRAPPER, str(report), *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert report.exists(), done.stderr
        usage = json.loads(report.read_text())
    return CpuRun(usage["code"], done.stdout, done.stderr, usage["wall"], usage["cpu"])


class CpuLimitExceeded(AssertionError):
    pass


@contextmanager
def cpu_limit(seconds: float):
    def interrupt(signum, frame):
        raise CpuLimitExceeded(f"the block used more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, interrupt)
    start = time.process_time()
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    used = time.process_time() - start  # the timer counts this process's CPU time; so does this, for threads too
    assert used < seconds, f"the block used {used:.2f} s of CPU time; the limit is {seconds} s"
