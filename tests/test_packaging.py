"""The wheel carries the built-in specs, blocks and schema, so `netspec summary resnet18` works after a normal
(non-editable) install, outside a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "netspec", "specs"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip().splitlines()[-1:]}")
    return next(out.glob("netspec-*.whl"))


def test_the_wheel_ships_every_builtin_spec_and_block_under_netspec_specs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "specs").rglob("*.yaml"):
        assert f"netspec/specs/{path.relative_to(ROOT / 'specs').as_posix()}" in names, path


def test_the_wheel_ships_the_json_schema_and_the_console_script(wheel):
    archive = zipfile.ZipFile(wheel)
    assert "netspec/schema/netspec.schema.json" in archive.namelist()
    entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
    assert "netspec = netspec.cli:main" in archive.read(entry_points).decode()


def test_the_wheel_ships_the_view_pages_html_css_and_script(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("page.html", "page.css", "page.js"):
        assert f"netspec/backends/draw/{name}" in names


def test_an_unpacked_wheel_finds_its_builtin_specs_without_a_checkout(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import netspec.frontend.imports as s; "
            "print(s.builtin_root()); print(len(s.builtin_names()))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    root, count = done.stdout.split()
    assert Path(root) == tmp_path / "site" / "netspec" / "specs"
    assert int(count) >= 17
