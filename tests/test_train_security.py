"""A run folder or checkpoint someone else made: links planted in the folder, file names recorded in a checkpoint,
an export onto the run's own files, two processes on one folder, and the modes of what netspec writes.  CPU,
synthetic data, one tiny network."""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.train import checkpoint, files, rundir, run
from netspec.train.plots import write_curves
from netspec.train.recipe import RunOptions

TINY = ("netspec: 1\nname: tiny\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 2, kernel: 3}\n  - relu\n"
        "  - global_avgpool\n  - flatten\n  - linear: {out: 10}\n")
FLAGS = {"data": "synthetic", "epochs": 1, "batch_size": 32, "seed": 0}


def tiny_run(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tiny.yaml").write_text(TINY)
    return run.start(str(out / "tiny.yaml"), FLAGS, RunOptions(device="cpu", out=str(out / "runs"), subset=64,
                                                                download=False, threads=1)).run_dir


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("tiny"))


def copy_run(source: Path, target: Path) -> Path:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "internal error" not in err and "Traceback" not in err
    return err.strip()


def resume(folder: Path, *more: str) -> int:
    return main(["train", "--resume", str(folder), "--device", "cpu", "--no-progress", "--threads", "1", *more])


# ── links planted in a run folder ─────────────────────────────────────────────────────────────────────────────

# The run folder's own names, and the fixed temporary names earlier versions wrote through.
PLANTED = ("metrics.jsonl", ".metrics.jsonl.tmp", ".run.json.tmp", ".curves.png.tmp", "summary.txt", "spec")


@pytest.mark.parametrize("name", PLANTED)
def test_resume_refuses_a_run_folder_holding_a_link_and_writes_nothing_through_it(finished, tmp_path, capsys,
                                                                                   name):
    folder = copy_run(finished, tmp_path / "run")
    target = tmp_path / "outside.txt"
    target.write_text("precious\n")
    if (folder / name).is_dir():
        (folder / name / "tiny.yaml").unlink()
        (folder / name / "tiny.yaml").symlink_to(target)
        name = f"{name}/tiny.yaml"
    else:
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(target)
    assert resume(folder, "--epochs", "2") == 2
    line = one_error_line(capsys)
    assert line == f"netspec: error: {folder / name} is a symbolic link; a run folder's files must be plain files"
    assert target.read_text() == "precious\n"


def test_the_run_folder_writers_replace_a_planted_link_instead_of_writing_through_it(tmp_path):
    """The root of the fix, below the folder check: every writer works on a fresh temporary file of its own."""
    target = tmp_path / "outside.txt"
    target.write_text("precious\n")
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("run.json", ".run.json.tmp", "summary.txt", ".summary.txt.tmp", "curves.png", ".curves.png.tmp",
                 ".metrics.jsonl.tmp", "last.pt", ".last.pt.tmp"):
        (folder / name).symlink_to(target)
    (folder / "metrics.jsonl").write_text('{"kind": "step", "step": 1}\n')
    rundir.write_json(folder / "run.json", {"a": 1})
    rundir.write_text(folder / "summary.txt", "summary\n")
    rundir.truncate_metrics(folder / "metrics.jsonl", 5)
    write_curves(folder / "curves.png", [{"kind": "epoch", "epoch": 1, "step": 2, "loss": 1.0,
                                              "train_acc": 0.5, "test_acc": 0.5, "lr": 0.1}], "t")
    checkpoint.save(folder / "last.pt", {"model": {"w": torch.ones(1)}})
    assert target.read_text() == "precious\n"
    for name in ("run.json", "summary.txt", "curves.png", "last.pt", "metrics.jsonl"):
        assert not (folder / name).is_symlink()
    (folder / "linked.jsonl").symlink_to(target)
    with pytest.raises(files.RunDirRefused, match="is a symbolic link"):
        rundir.append_metric(folder / "linked.jsonl", {"kind": "step"})
    with pytest.raises(files.RunDirRefused, match="is a symbolic link"):
        rundir.read_metrics(folder / "linked.jsonl")
    assert target.read_text() == "precious\n"


# ── file names recorded in a checkpoint ───────────────────────────────────────────────────────────────────────

def with_spec(path: Path, **spec) -> None:
    saved = torch.load(path, weights_only=True)
    saved["spec"] = {**saved["spec"], **spec}
    torch.save(saved, path)


ESCAPES = {
    "absolute_main": {"main": "/etc/passwd"},
    "dotdot_main": {"main": "../../../../../../etc/passwd"},
    "main_not_among_files": {"main": "other.yaml"},
    "dotdot_file": {"files": {"tiny.yaml": TINY, "../../escaped.yaml": "x: 1\n"}},
    "absolute_file": {"files": {"tiny.yaml": TINY, "/tmp/escaped-by-netspec.yaml": "x: 1\n"}},
}


@pytest.mark.parametrize("command", ["eval", "resume"])
@pytest.mark.parametrize("escape", ESCAPES)
def test_a_checkpoints_spec_names_must_stay_inside_its_bundle(finished, tmp_path, capsys, command, escape):
    folder = copy_run(finished, tmp_path / "run")
    for name in ("last.pt", "best.pt"):
        with_spec(folder / name, **ESCAPES[escape])
    before = snapshot(folder)
    code = main(["eval", str(folder), "--device", "cpu"]) if command == "eval" else resume(folder, "--epochs", "2")
    line = one_error_line(capsys)
    assert code == 1
    assert "not a valid netspec checkpoint: `spec`: " in line and "root:" not in line
    assert snapshot(folder) == before
    assert not (tmp_path / "escaped.yaml").exists() and not Path("/tmp/escaped-by-netspec.yaml").exists()


def test_spec_files_refuse_names_that_leave_the_folder_whoever_makes_them():
    for bad in ("/etc/passwd", "../x.yaml", "a/../../x.yaml", "./x.yaml", "", "a\\..\\x.yaml"):
        with pytest.raises(rundir.SpecFilesError):
            rundir.SpecFiles(bad, {bad: TINY}, {})
    assert rundir.SpecFiles("lib/a.yaml", {"lib/a.yaml": TINY}, {}).main == "lib/a.yaml"


# ── export onto the run's own files ───────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("source,output", [("RUN", "RUN/last.pt"), ("RUN/best.pt", "RUN/best.pt"),
                                           ("RUN/last.pt", "RUN/model.safetensors"), ("RUN", "RUN/model.py"),
                                           ("RUN", "RUN/spec/tiny.pt"), ("RUN/best.pt", "LINK")])
def test_export_never_overwrites_its_input_or_the_runs_own_files(finished, tmp_path, capsys, source, output):
    folder = copy_run(finished, tmp_path / "run")
    (tmp_path / "link.pt").symlink_to(folder / "best.pt")
    before = snapshot(folder)
    where = {"RUN": str(folder), "LINK": str(tmp_path / "link.pt")}
    source, output = (where["RUN"] + s[3:] if s.startswith("RUN") else where[s] for s in (source, output))
    assert main(["export", source, "-o", output]) == 2
    assert "choose another" in one_error_line(capsys)
    assert snapshot(folder) == before
    assert main(["export", str(folder), "-o", str(folder / "model.onnx.pt")]) == 0   # a new name there is fine


# ── two processes on one run folder ───────────────────────────────────────────────────────────────────────────

def test_a_second_resume_of_a_run_in_use_is_refused_and_touches_nothing(finished, tmp_path, capsys):
    folder = copy_run(finished, tmp_path / "run")
    before = snapshot(folder)
    with files.locked(folder):   # as a training process holds it
        assert resume(folder, "--epochs", "2") == 2
        assert one_error_line(capsys) == f"netspec: error: run folder {folder} is in use by another netspec process"
        assert snapshot(folder) == before
    assert resume(folder, "--epochs", "2") == 0                      # free again once the holder is done
    assert checkpoint.load(folder / "last.pt")["state"]["epoch"] == 2


def test_a_new_run_holds_its_folder_while_it_trains(tmp_path):
    class Probe(run.UI):
        seen: list = []

        def epoch_end(self, record, epochs, device):
            (folder,) = (tmp_path / "runs").iterdir()
            with pytest.raises(files.RunDirRefused, match="in use"):
                with files.locked(folder):
                    pass
            self.seen.append(record["epoch"])

    (tmp_path / "tiny.yaml").write_text(TINY)
    run.start(str(tmp_path / "tiny.yaml"), FLAGS, RunOptions(device="cpu", out=str(tmp_path / "runs"), subset=64,
                                                              download=False, threads=1), Probe())
    assert Probe.seen == [1]


# ── file modes ────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_checkpoints_exports_and_run_files_follow_the_umask(finished, tmp_path, umask):
    previous = os.umask(umask)
    try:
        checkpoint.save(tmp_path / "c.pt", {"model": {"w": torch.ones(1)}})
        rundir.write_json(tmp_path / "run.json", {})
        assert main(["export", str(finished), "-o", str(tmp_path / "m.safetensors")]) == 0
        assert main(["export", str(finished), "-o", str(tmp_path / "m.py")]) == 0
    finally:
        os.umask(previous)
    for name in ("c.pt", "run.json", "m.safetensors", "m.py"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_a_finished_runs_files_are_readable_by_the_group_under_the_usual_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        folder = tiny_run(tmp_path)
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.is_file()}
    assert modes and all(mode == 0o644 for mode in modes.values()), modes
    assert json.loads((folder / "run.json").read_text())["spec"] == "tiny"


# ── strings from outside never become code in generated source ───────────────────────────────────────────────

HOSTILE = 'x"""\nopen("PWNED", "w")\n"""\n# '


def only_definitions(source: str) -> None:
    """The generated file holds its docstring, the torch imports, and class and function definitions: nothing a
    file name could have added runs on import."""
    tree = ast.parse(source)
    docstring, *rest = tree.body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    assert all(isinstance(s, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef)) for s in rest), \
        [ast.dump(s)[:80] for s in rest if not isinstance(s, (ast.Import, ast.ImportFrom, ast.ClassDef,
                                                               ast.FunctionDef))]
    assert {alias.name for s in rest if isinstance(s, (ast.Import, ast.ImportFrom)) for alias in s.names} \
        <= {"torch", "nn"}
    for cls in (s for s in rest if isinstance(s, ast.ClassDef)):
        assert all(isinstance(s, ast.FunctionDef) or isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                   for s in cls.body), cls.name


def test_a_spec_file_name_holding_code_stays_text_in_the_compiled_source(tmp_path, monkeypatch):
    folder = tmp_path / HOSTILE.replace("/", "_")
    folder.mkdir()
    spec = folder / (HOSTILE + "net.yaml")
    spec.write_text(TINY)
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(spec), "-o", "model.py"]) == 0
    source = (tmp_path / "model.py").read_text()
    only_definitions(source)
    assert HOSTILE in ast.get_docstring(ast.parse(source))       # the name is kept, as text
    exec(compile(source, "model.py", "exec"), {})
    assert not (tmp_path / "PWNED").exists()


def test_an_export_file_name_holding_code_stays_a_comment(finished, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = 'm")\nopen("PWNED", "w")\n#.py'
    assert main(["export", str(finished), "-o", name]) == 0
    source = (tmp_path / name).read_text()
    only_definitions(source)
    exec(compile(source, "m.py", "exec"), {})
    assert not (tmp_path / "PWNED").exists()


def test_the_run_folders_diagram_keeps_to_the_limits_draw_keeps_to(tmp_path, monkeypatch):
    """A training run draws its network with the bounds `netspec draw` has: past the box limit, no diagram
    (a courtesy, never a failure) rather than minutes of `dot`."""
    import shutil

    import netspec
    from netspec.backends.draw import limits

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    (tmp_path / "tiny.yaml").write_text(TINY)
    shaped = netspec.shaped_network(tmp_path / "tiny.yaml")
    assert rundir.write_diagram(shaped, tmp_path / "diagram.svg") == tmp_path / "diagram.svg"
    monkeypatch.setattr(limits, "MAX_BOXES", 3)
    assert rundir.write_diagram(shaped, tmp_path / "again.svg") is None
    assert not (tmp_path / "again.svg").exists()
