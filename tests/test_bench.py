"""The benchmark code runs and writes what docs/benchmarks.md is made from (it is not a speed test).

Everything that imports torch runs in a child process: this module runs early (alphabetically), and a test
process that has grown past a few hundred MB makes every child it spawns later report that peak as its own
(`ru_maxrss` survives vfork + exec), which tests/test_bounds.py would read as the child's memory.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import report  # noqa: E402  (no torch)

import netspec  # noqa: E402

MODELS = ("densenet121", "googlenet", "resnet18", "vgg11")


def child(args: list[str], timeout: int = 120) -> str:
    """stdout of `python ARGS` run in the checkout; fails the test with its stderr when it fails."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "results.json"
    child([str(BENCH / "run.py"), "--quick", "--only", "scaling", "--out", str(out), "--plot",
           str(folder / "scaling.png")])
    return json.loads(out.read_text())


def test_a_quick_scaling_run_writes_the_fields_the_docs_use(quick_results):
    assert quick_results["quick"] is True
    assert {"cpu", "cores", "torch", "python", "commit", "date"} <= set(quick_results["machine"])
    scaling = quick_results["sections"]["scaling"]
    assert set(scaling["families"]) == {"resnet", "densenet"}
    for family in scaling["families"].values():
        assert [row["blocks"] for row in family["rows"]] == scaling["sizes"]
        for row in family["rows"]:
            assert row["nodes"] > row["blocks"]
            for phase in ("front_s", "compile_s"):
                assert row[phase]["min"] <= row[phase]["median"] <= row[phase]["max"]
        assert {"ms_per_block", "r2", "per_block_ratio_last_vs_mid"} <= set(family["fit"]["compile_s"])
    if importlib.util.find_spec("matplotlib") is not None:
        assert Path(scaling["plot"]).stat().st_size > 1000


def test_the_report_rewrites_only_its_own_section(quick_results, tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Training\n\nkept\n", encoding="utf-8")
    report.update(doc, quick_results)
    report.update(doc, quick_results)  # idempotent: one section, not two
    text = doc.read_text(encoding="utf-8")
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    assert "## Training\n\nkept" in text and "### 3. Scaling with depth" in text


@pytest.mark.parametrize("blocks", [1, 25])
def test_generated_specs_are_valid_networks(tmp_path, blocks):
    import scaling

    for family, text_of in scaling.FAMILIES.items():
        path = tmp_path / f"{family}.yaml"
        path.write_text(text_of(blocks), encoding="utf-8")
        assert list(netspec.shaped_network(path).output_shape) == [10]


def test_the_overhead_measurement_runs_and_renders(quick_results, tmp_path):
    # make_pair itself checks that the compiled spec and the reference compute the same function.
    out = json.loads(child([str(BENCH / "overhead.py"), "--models", "resnet18", "--no-torchvision", "--size", "32",
                            "--batch", "2", "--repeats", "2", "--budget", "0", "--target", "0.001"]))
    row = out["models"]["resnet18"]
    assert row["baseline"] == "bench/reference_models.py" and row["max_abs_diff"] <= 1e-4
    for mode in ("train", "infer"):
        assert row[mode]["repeats"] == 2
        for contestant in ("netspec", "control"):
            assert {"min", "median", "max", "n"} <= set(row[mode][contestant]["cpu"]["ratio"])
    results = {**quick_results, "sections": {"overhead": {**out, "python": sys.executable}}}
    assert "| resnet18 |" in report.render(results, tmp_path)


KEYS_CHECK = """
import sys, torch, netspec
sys.path.insert(0, "bench")
import reference_models
for name in sys.argv[1:]:
    with torch.device("meta"):
        ours = netspec.load(f"specs/imagenet/{name}.yaml", num_classes=10)
        ref = reference_models.reference(name, num_classes=10)
    a = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    b = [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    assert a == b, name
print("ok")
"""


def test_reference_models_have_the_torchvision_faithful_specs_keys_in_order():
    assert child(["-c", KEYS_CHECK, *MODELS]).strip() == "ok"


TORCHVISION_CHECK = """
import sys, torch, torchvision
sys.path.insert(0, "bench")
import reference_models
for name in sys.argv[1:]:
    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    theirs = getattr(torchvision.models, name)(num_classes=10, **extra).eval()
    ours = reference_models.reference(name, num_classes=10).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
print("ok")
"""


@pytest.mark.torchvision
@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed")
def test_reference_models_match_torchvision():
    assert child(["-c", TORCHVISION_CHECK, *MODELS], timeout=300).strip() == "ok"


def test_the_gpu_scripts_fast_recipe_is_a_valid_spec_with_a_recipe_netspec_train_accepts():
    shaped = netspec.shaped_network(BENCH / "specs" / "fmnist_fast.yaml")
    assert list(shaped.network.input_shape) == [1, 28, 28] and list(shaped.output_shape) == [10]
    assert {"lr", "epochs", "batch_size", "schedule", "augment"} <= set(netspec.load_spec(
        BENCH / "specs" / "fmnist_fast.yaml").train)


def test_a_missing_torchvision_interpreter_is_skipped_not_run(monkeypatch, tmp_path):
    """On a machine without the torchvision venv, looking for it must not crash (`make bench` once died with
    FileNotFoundError: the probe ran before the existence check)."""
    sys.path.insert(0, str(BENCH))
    try:
        import run as bench_run
    finally:
        sys.path.remove(str(BENCH))
    monkeypatch.setattr(bench_run, "TV_CANDIDATES", ("NETSPEC_BENCH_TV_PYTHON", str(tmp_path / "no" / "python")))
    monkeypatch.setenv("NETSPEC_BENCH_TV_PYTHON", str(tmp_path / "missing" / "python"))
    monkeypatch.setattr(bench_run.sys, "executable", str(tmp_path / "absent" / "python"))
    assert bench_run.torchvision_python() is None


GPU_SECTIONS = """
import json, sys
from pathlib import Path
sys.path.insert(0, "bench")
import gpu

out = Path(sys.argv[1])
results = {"modes": ["eager"]}
gpu.write_results(out, results)
assert json.loads(out.read_text()) == results
def failing(name, mode, device, steps, scale):
    if name == "bad":
        raise RuntimeError("no toolchain")
    return {"images_per_s": 1.0}
gpu.throughput = failing
seen = []
def save(partial):
    gpu.write_results(out, {**results, "throughput": partial})
    seen.append(json.loads(out.read_text())["throughput"])
gpu.run_throughput(["ok", "bad"], ["eager"], gpu.torch.device("cpu"), 1, 1.0, save)
history = [{"epoch": 1, "train_time": 50.0}, {"epoch": 2, "train_time": 60.0}, {"epoch": 3, "train_time": 71.0}]
print(json.dumps({"seen": seen, "compile_s": gpu.compile_seconds(history),
                  "one_epoch": gpu.compile_seconds(history[:1])}))
"""


def test_the_gpu_script_writes_its_results_after_every_net_and_reports_compile_time_apart(tmp_path):
    out = json.loads(child(["-c", GPU_SECTIONS, str(tmp_path / "gpu.json")]))
    assert out["seen"] == [{"ok": {"eager": {"images_per_s": 1.0}}},
                           {"ok": {"eager": {"images_per_s": 1.0}},
                            "bad": {"eager": {"error": "RuntimeError: no toolchain"}}}]
    assert out["compile_s"] == 39.0 and out["one_epoch"] is None
    assert not (tmp_path / "gpu.json.tmp").exists()


def test_the_gpu_scripts_checks_rehearse_on_the_cpu_each_recorded_as_run_or_skipped_with_a_reason(tmp_path):
    """`bench/gpu.py --checks-only --device cpu`: the checks a CPU can make pass, the CUDA-only ones are
    skipped with a reason, and every check is in the JSON (the GPU session runs the same code on CUDA)."""
    import os

    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--device", "cpu", "--checks-only", "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    checks = json.loads(out.read_text())["checks"]
    assert list(checks) == ["train_eval", "cpu_load", "cudnn_benchmark", "device_index", "torchrun",
                            "resume_cpu_cuda"]
    for name in ("train_eval", "cpu_load", "cudnn_benchmark"):
        assert checks[name]["passed"] is True, checks[name]
    for name in ("device_index", "torchrun", "resume_cpu_cuda"):
        assert "CUDA" in checks[name]["skipped"]
    assert checks["train_eval"]["eval"]["test_acc"] == checks["train_eval"]["run"]["test_acc"]
    assert checks["cpu_load"]["devices"] == ["cpu"]
    assert "throughput" not in json.loads(out.read_text())
