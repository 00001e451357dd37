"""Helpers shared by the test modules: the repository's paths, the zoo of specs, and running the CLI.

Test modules import the plain functions (`from conftest import all_specs`) because parametrization needs them at
collection time, before any fixture exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"


def all_specs() -> list[Path]:
    """Every network spec in specs/ (sub-folders included), block libraries left out."""
    return sorted(p for p in SPECS.rglob("*.yaml") if "blocks" not in p.relative_to(SPECS).parts)


def spec_params(specs: list[Path] | None = None) -> list:
    """`all_specs()` as pytest params with readable ids (`googlenet`, `imagenet/resnet50`)."""
    return [pytest.param(p, id=str(p.relative_to(SPECS).with_suffix(""))) for p in (specs or all_specs())]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def first_error_line(self) -> str:
        return self.stderr.splitlines()[0] if self.stderr else ""


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 60, python_args: tuple[str, ...] = ()) -> Run:
    """`python -m netspec ARGS` in a fresh interpreter, as a user runs it; wall time measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["COLUMNS"] = "200"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *python_args, "-m", "netspec", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr, time.perf_counter() - start)


def run_python(code: str, cwd: Path = REPO, timeout: float = 60) -> subprocess.CompletedProcess:
    """A snippet in a fresh interpreter (for checks on what a command imports)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def keep_thread_count():
    """Training runs in tests use one thread (2-core machines shared with other jobs slow down badly with more);
    the process-wide setting is put back for the modules after them.  Used by a module's `pytestmark`."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
