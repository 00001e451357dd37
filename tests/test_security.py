"""Security: no spec can import a module, run code or read a file outside the folders its imports may reach, and
no checkpoint or weights file can run code when netspec loads it.

Each payload, if it ever ran, would create a sentinel file; the tests check the payload is refused with a
message and that the sentinel never appears.  The rules are in docs/spec-format.md ("Imports") and
docs/errors.md ("Files netspec refuses to load").
"""

from __future__ import annotations

import ast
import builtins
import os
from pathlib import Path

import pytest

from netspec.errors import SpecErrors, render
from netspec.pipeline import shaped_network
from netspec.frontend.imports import load_all

from conftest import REPO, run_cli

HEADER = "netspec: 1\nname: payload\ninput: [1, 8, 8]\n"


@pytest.fixture
def sentinel(tmp_path) -> Path:
    path = tmp_path / "SENTINEL"
    yield path
    assert not path.exists(), "a payload ran"


# ── specs: tags ───────────────────────────────────────────────────────────────────────────────────────────────

def tag_payloads(sentinel: Path) -> dict[str, str]:
    """YAML that PyYAML's unsafe loaders would turn into a call of os.system (or an import)."""
    touch = f"touch {sentinel}"
    return {
        "apply": f'body:\n  - !!python/object/apply:os.system ["{touch}"]\n',
        "new": f'body:\n  - !!python/object/new:os.system ["{touch}"]\n',
        "name": "body:\n  - relu: !!python/name:os.system\n",
        "module": "body:\n  - relu: !!python/module:os\n",
        "object": "body:\n  - !!python/object:os.PathLike {}\n",
        "verbatim": f'body:\n  - !<tag:yaml.org,2002:python/object/apply:os.system> ["{touch}"]\n',
        "directive": "%TAG !py! tag:yaml.org,2002:python/\n---\n" + HEADER +
                     f'body:\n  - !py!object/apply:os.system ["{touch}"]\n',
        "key": "body:\n  - !!python/name:os.system : 1\n",
        "local": "body:\n  - !relu {}\n",
        "in_params": f'params:\n  x: !!python/object/apply:os.system ["{touch}"]\nbody: [relu]\n',
    }


def test_no_yaml_tag_builds_an_object_or_runs_code_in_a_real_process(tmp_path, sentinel):
    files = []
    for name, body in tag_payloads(sentinel).items():
        path = tmp_path / f"tag_{name}.yaml"
        path.write_text(body if body.startswith("%TAG") else HEADER + body)
        files.append(path)
    run = run_cli("validate", *map(str, files))
    assert run.code == 2 and "Traceback" not in run.stderr
    for path in files:
        lines = [line for line in run.stderr.splitlines() if line.startswith(f"{path}:")]
        assert lines and "is not allowed: a spec is plain data" in lines[0], (path.name, run.stderr[-800:])


def test_a_tag_in_an_imported_library_or_in_set_is_refused_too(tmp_path, sentinel):
    (tmp_path / "lib.yaml").write_text(f'netspec: 1\nblocks:\n  b: !!python/object/apply:os.system ["touch {sentinel}"]\n')
    (tmp_path / "net.yaml").write_text(HEADER + "imports: [lib.yaml]\nbody: [relu]\n")
    with pytest.raises(SpecErrors) as caught:
        shaped_network(tmp_path / "net.yaml")
    assert caught.value.errors[0].mark.file.endswith("lib.yaml") and "is not allowed" in caught.value.errors[0].message
    run = run_cli("validate", "lenet", "--set", f'num_classes=!!python/object/apply:os.system ["touch {sentinel}"]')
    assert run.code == 2 and run.stderr.startswith("netspec: error: --set num_classes: cannot read the value")


# ── specs: expressions ────────────────────────────────────────────────────────────────────────────────────────

def expression_payloads(sentinel: Path) -> list[str]:
    touch = f"touch {sentinel}"
    return [
        f"${{__import__('os').system('{touch}')}}",
        f"${{open('{sentinel}', 'w')}}",
        "${().__class__.__base__.__subclasses__()}",
        "${in.__class__.__init__.__globals__}",
        f"${{eval(\"__import__('os').system('{touch}')\")}}",
        f"${{exec(\"import os; os.system('{touch}')\")}}",
        "${getattr(1, 'real')}", "${globals()}", "${vars()}", "${breakpoint()}", "${compile('1', 'x', 'eval')}",
        f"${{(lambda: __import__('os'))()}}", "${f'{1}'}", "${[c for c in (1,)]}", "${(x := 1)}",
        "${'{0.__class__}'.format(1)}", "${len.__self__}", "${max.__module__}", "${int.__subclasses__()}",
        "${type(1)}", "${__builtins__}", "${[].__class__.__mro__[1].__subclasses__()}",
    ]


@pytest.mark.parametrize("where", ["op_arg", "name", "repeat", "when", "input", "param_default", "template_default"])
def test_no_expression_can_import_call_or_reach_python_objects(tmp_path, sentinel, where):
    for index, payload in enumerate(expression_payloads(sentinel)):
        quoted = '"' + payload.replace("\\", "\\\\").replace('"', '\\"') + '"'
        body = {
            "op_arg": f"input: [1, 8, 8]\nbody:\n  - conv: {{out: {quoted}, kernel: 3}}\n",
            "name": f"input: [1, 8, 8]\nbody:\n  - {{name: {quoted}, relu: {{}}}}\n",
            "repeat": f"input: [1, 8, 8]\nbody:\n  - {{repeat: {quoted}, relu: {{}}}}\n",
            "when": f"input: [1, 8, 8]\nbody:\n  - {{when: {quoted}, relu: {{}}}}\n",
            "input": f"input: [1, {quoted}, 8]\nbody: [relu]\n",
            "param_default": f"params:\n  x: {{type: int, default: {quoted}}}\ninput: [1, 8, 8]\n"
                             "body:\n  - conv: {out: $x, kernel: 3}\n",
            "template_default": f"input: [1, 8, 8]\nblocks:\n  t:\n    params: {{x: {{type: int, default: {quoted}}}}}\n"
                                "    conv: {out: $x, kernel: 3}\nbody: [t]\n",
        }[where]
        spec = tmp_path / f"{where}_{index}.yaml"
        spec.write_text(f"netspec: 1\nname: payload\n{body}")
        with pytest.raises(SpecErrors) as caught:
            shaped_network(spec)
        first = caught.value.errors[0]
        assert first.mark.file == str(spec) or first.mark.file.endswith(spec.name), (payload, first.first_line())
        assert first.mark.line >= 3, (payload, first.first_line())


def test_a_set_value_is_data_even_when_it_looks_like_an_expression(sentinel):
    """`--set` values are typed against the param; a string param holding `${…}` is not evaluated as code."""
    run = run_cli("validate", "bn_lenet", "--set", f"bn_impl=${{__import__('os').system('touch {sentinel}')}}")
    assert run.code == 2 and "Traceback" not in run.stderr


# ── the source code itself ────────────────────────────────────────────────────────────────────────────────────

BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}
UNSAFE = {"yaml": {"load", "load_all", "full_load", "full_load_all", "unsafe_load", "unsafe_load_all"},
          "pickle": {"load", "loads", "Unpickler"}, "marshal": {"load", "loads"}, "dill": {"load", "loads"},
          "importlib": {"import_module"}, "ast": {"literal_eval"}, "builtins": BUILTINS}


def unsafe_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, call) of every call in `tree` that could run code from data."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in BUILTINS:
            found.append((node.lineno, f"{func.id}(…)"))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner, name = func.value.id, func.attr
            if name in UNSAFE.get(owner, ()):
                found.append((node.lineno, f"{owner}.{name}(…)"))
            elif (owner, name) == ("torch", "load") and not any(
                    k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords):
                found.append((node.lineno, "torch.load without weights_only=True"))
    return found


def test_netspec_never_calls_eval_exec_pickle_or_an_unsafe_yaml_or_torch_load():
    """Every call that could run code from data is absent, and every torch.load passes weights_only=True."""
    found = [f"{path.relative_to(REPO)}:{line}: {call}" for path in sorted((REPO / "netspec").rglob("*.py"))
             for line, call in unsafe_calls(ast.parse(path.read_text(encoding="utf-8")))]
    assert not found, "\n".join(found)


def test_the_source_check_would_catch_each_unsafe_call():
    code = ("eval(x)\nexec(x)\n__import__(x)\nyaml.load(x)\nyaml.unsafe_load(x)\npickle.loads(x)\n"
            "torch.load(x)\ntorch.load(x, weights_only=False)\nimportlib.import_module(x)\nast.literal_eval(x)\n"
            "torch.load(x, weights_only=True)\nyaml.safe_load(x)\njson.loads(x)\n")
    assert [line for line, _ in unsafe_calls(ast.parse(code))] == list(range(1, 11))


# ── imports ───────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture
def world(tmp_path) -> dict[str, Path]:
    """project/net.yaml may import from project/ (and the built-in library); secret/ is outside it."""
    project, secret = tmp_path / "project", tmp_path / "secret"
    (project / "sub").mkdir(parents=True)
    secret.mkdir()
    (secret / "lib.yaml").write_text("netspec: 1\nblocks:\n  stolen: {seq: [relu]}\n")
    (project / "sub" / "ok.yaml").write_text("netspec: 1\nblocks:\n  fine: {seq: [relu]}\n")
    (project / "link.yaml").symlink_to(secret / "lib.yaml")
    (project / "linkdir").symlink_to(secret)
    return {"project": project, "secret": secret}


def _import(world, entry: str) -> SpecErrors | None:
    spec = world["project"] / "net.yaml"
    spec.write_text(HEADER + f"imports: ['{entry}']\nbody: [relu]\n")
    try:
        load_all(spec)
    except SpecErrors as err:
        return err
    return None


@pytest.mark.parametrize("entry, message", [
    ("/etc/passwd", "is an absolute path"),
    ("~/.bashrc", "is an absolute path"),
    ("../secret/lib.yaml", "leaves the folders a spec may read"),
    ("../../../../../../etc/passwd", "leaves the folders a spec may read"),
    ("../../../../../../etc/no_such_file.yaml", "leaves the folders a spec may read"),
    ("sub/../../secret/lib.yaml", "leaves the folders a spec may read"),
    ("link.yaml", "leaves the folders a spec may read"),
    ("linkdir/lib.yaml", "leaves the folders a spec may read"),
])
def test_an_import_outside_the_specs_folder_and_the_library_is_refused(world, entry, message):
    error = _import(world, entry)
    assert error is not None and message in error.errors[0].message
    assert error.errors[0].first_line().startswith(f"{world['project'] / 'net.yaml'}:4:")


def test_imports_within_the_folder_and_from_the_builtin_library_are_allowed(world):
    assert _import(world, "sub/ok.yaml") is None
    assert _import(world, "blocks/inception.yaml") is None
    assert _import(world, "sub/../sub/ok.yaml") is None


def test_a_refused_import_does_not_say_whether_the_file_outside_exists(world):
    there = _import(world, "../secret/lib.yaml").errors[0].message
    absent = _import(world, "../secret/absent.yaml").errors[0].message
    assert there.replace("lib.yaml", "X") == absent.replace("absent.yaml", "X")


@pytest.mark.parametrize("entry, shown", [
    ("link.yaml", "`link.yaml`"),
    ("linkdir/lib.yaml", "`linkdir/lib.yaml`"),
    ("sub/link.yaml", "`sub/link.yaml`"),
    ("sub/nested.yaml", "`sub/../linkdir/lib.yaml`"),  # imported by a library: shown from the spec's folder
])
def test_a_refused_symbolic_link_is_shown_as_written_never_where_it_points(world, entry, shown):
    (world["project"] / "sub" / "link.yaml").symlink_to(world["secret"] / "lib.yaml")
    (world["project"] / "sub" / "nested.yaml").write_text("netspec: 1\nimports: [../linkdir/lib.yaml]\n"
                                                          "blocks:\n  b: {seq: [relu]}\n")
    error = _import(world, entry).errors[0]
    assert error.found == f"{shown} (from the spec's folder), which leads outside them"
    assert "secret" not in render(error)  # the name of the folder outside, which only the links know


def test_no_file_outside_the_allowed_folders_is_ever_opened(world, monkeypatch):
    opened = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(os.path.realpath(file) if isinstance(file, (str, os.PathLike)) else file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: spy(self, *a, **k))
    for entry in ("../secret/lib.yaml", "link.yaml", "linkdir/lib.yaml", "/etc/passwd"):
        _import(world, entry)
    secret = os.path.realpath(world["secret"])
    assert not [p for p in opened if isinstance(p, str) and (p.startswith(secret) or p == "/etc/passwd")]


# ── checkpoints and weights ───────────────────────────────────────────────────────────────────────────────────

class Payload:
    """Pickles as a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def malicious_checkpoint(path: Path, sentinel: Path, model_state: dict | None = None) -> Path:
    """A file that passes for a netspec checkpoint (or a state_dict) and runs `touch sentinel` if unpickled."""
    import torch

    torch.save({"format": "netspec-checkpoint", "version": 1, "model": model_state or {},
                "hook": Payload(f"touch {sentinel}")}, path)
    return path


def test_eval_refuses_a_malicious_checkpoint_and_runs_nothing(tmp_path, sentinel):
    evil = malicious_checkpoint(tmp_path / "best.pt", sentinel)
    run = run_cli("eval", str(evil), "--device", "cpu")
    assert run.code == 1, run.stderr
    assert run.stderr.splitlines() == [f"netspec: error: {evil}: refused: it holds a Python object (`posix.system`) "
                                       "besides tensors; netspec reads weights with weights_only=True and runs no "
                                       "code from a file"]


def test_resume_refuses_a_malicious_last_checkpoint_and_runs_nothing(tmp_path, sentinel, capsys):
    from netspec.cli import main

    malicious_checkpoint(tmp_path / "last.pt", sentinel)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", "--resume", str(tmp_path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "refused: it holds a Python object (`posix.system`)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_init_from_refuses_malicious_weights_and_starts_no_run(tmp_path, sentinel, capsys):
    from netspec.cli import main

    evil = malicious_checkpoint(tmp_path / "weights.pt", sentinel)
    code = main(["train", "lenet", "--data", "synthetic", "--subset", "64", "--epochs", "1", "--device", "cpu",
                 "--threads", "1", "--no-progress", "--init-from", str(evil), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 1 and "refused: it holds a Python object (`posix.system`)" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_load_weights_refuses_a_malicious_file_with_a_clear_error(tmp_path, sentinel):
    import netspec
    from netspec.backends.weights import WeightsFileError

    model = netspec.load("lenet")
    evil = malicious_checkpoint(tmp_path / "state.pt", sentinel, model.state_dict())
    with pytest.raises(WeightsFileError, match=r"refused: it holds a Python object \(`posix.system`\)"):
        netspec.load_weights(model, evil)
    with pytest.raises(WeightsFileError, match="refused"):
        netspec.load_weights(model, str(evil))
