"""The CUDA paths, tested without a GPU: device choice, AMP and cuDNN defaults (torch.cuda monkeypatched),
resuming on another kind of device, eval in the run's own precision, and checkpoints that hold CPU tensors."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.train import checkpoint, devices, loop, run
from netspec.train.distributed import Dist
from netspec.train.recipe import RecipeError, RunOptions

from stopping import StopAfter

ROOT = Path(__file__).resolve().parent.parent
TINY = ("netspec: 1\nname: tiny\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 2, kernel: 3}\n  - relu\n"
        "  - global_avgpool\n  - flatten\n  - linear: {out: 10}\n")
FLAGS = {"data": "synthetic", "epochs": 1, "batch_size": 8, "augment": "flip,crop"}


@pytest.fixture(autouse=True)
def keep_cudnn_benchmark():
    before = torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.benchmark = before


def fake_cuda(monkeypatch, count: int = 2, capability: tuple[int, int] = (8, 0)) -> list:
    """torch.cuda as seen on a machine with `count` GPUs of `capability`; returns the set_device calls."""
    calls: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", calls.append)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)   # emulation counts here
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return calls


# ── item 8: --device ──────────────────────────────────────────────────────────────────────────────────────────

def test_cuda_n_checks_availability_and_makes_the_device_current(monkeypatch):
    calls = fake_cuda(monkeypatch)
    assert devices.pick("cuda:1", Dist()) == torch.device("cuda", 1) and calls == [1]
    assert devices.pick("cuda", Dist()) == torch.device("cuda", 0) and calls == [1, 0]
    with pytest.raises(RecipeError, match=r"^--device cuda:2: 2 CUDA devices visible, cuda:0 to cuda:1$"):
        devices.pick("cuda:2", Dist())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RecipeError, match="CUDA is not available here"):
        devices.pick("cuda:1", Dist())


def test_each_torchrun_rank_takes_the_gpu_of_its_local_rank(monkeypatch):
    calls = fake_cuda(monkeypatch, count=2)
    assert [devices.pick("auto", Dist(rank, 2, rank)) for rank in (0, 1)] == [torch.device("cuda", 0),
                                                                               torch.device("cuda", 1)]
    assert calls == [0, 1]
    with pytest.raises(RecipeError, match=r"^LOCAL_RANK 3 has no GPU: 2 CUDA devices visible; start at most 2 "):
        devices.pick("cuda", Dist(3, 4, 3))
    with pytest.raises(RecipeError, match="under torchrun: each process takes the GPU of its LOCAL_RANK"):
        devices.pick("cuda:1", Dist(0, 2, 0))


def test_an_unknown_device_is_one_usage_line(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(TINY)
    assert main(["train", str(tmp_path / "tiny.yaml"), "--device", "gpu0", "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == ("netspec: error: argument --device: 'gpu0' is not a device: use auto, cpu, "
                                       "cuda, cuda:N or mps\n")
    with pytest.raises(RecipeError, match="not a device"):
        devices.pick("cuda:x", Dist())


# ── item 4 and 5: AMP and cuDNN defaults ──────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("capability,amp", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_autocast_is_the_default_only_on_gpus_with_native_bf16(monkeypatch, capability, amp):
    fake_cuda(monkeypatch, capability=capability)
    assert devices.default_amp(torch.device("cuda", 0)) is amp
    note = devices.precision_note(torch.device("cuda", 0), amp, None)
    assert note == "bf16 autocast" if amp else note.startswith(f"fp32 (compute capability {capability[0]}.")
    assert devices.default_amp(torch.device("cpu")) is False


def test_cudnn_benchmark_is_on_for_cuda_only():
    assert devices.cudnn_benchmark(torch.device("cuda", 0)) is True
    assert devices.cudnn_benchmark(torch.device("cpu")) is False
    assert devices.cudnn_benchmark(torch.device("cuda", 0), dynamic_shapes=True) is False


def test_a_run_sets_cudnn_benchmark_from_its_device(tmp_path, monkeypatch):
    """prepare() on a (pretended) CUDA device turns the autotuner on; nothing runs on the device."""
    from netspec import pipeline
    from netspec.train import rundir
    from netspec.train.recipe import resolve

    (tmp_path / "tiny.yaml").write_text(TINY)
    documents = pipeline.read(str(tmp_path / "tiny.yaml"))
    shaped = pipeline.shape_documents(documents, {})
    torch.backends.cudnn.benchmark = False
    seen = []
    monkeypatch.setattr(devices, "pick", lambda choice, info: torch.device("cpu"))
    monkeypatch.setattr(devices, "cudnn_benchmark", lambda device, dynamic_shapes=False: seen.append(device) or True)
    run.prepare(shaped, rundir.spec_files_of(documents, {}), resolve(shaped.network.train, FLAGS),
                RunOptions(device="cpu", subset=16, download=False, threads=1), Dist())
    assert seen == [torch.device("cpu")] and torch.backends.cudnn.benchmark is True


# ── item 1: resuming on another kind of device ────────────────────────────────────────────────────────────────

def test_a_checkpoint_saved_on_cuda_resumes_on_the_cpu_with_a_reseeded_generator(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    options = RunOptions(device="cpu", subset=32, out=str(tmp_path / "runs"), download=False, threads=1)
    with pytest.raises(loop.Stopped):
        run.start(str(tmp_path / "tiny.yaml"), FLAGS, options, StopAfter(2))
    (folder,) = (tmp_path / "runs").iterdir()
    saved = checkpoint.load(folder / "last.pt")
    assert saved["rng"]["aug_device"] == "cpu" and saved["state"]["step_in_epoch"] == 2
    saved["rng"]["aug"] = torch.zeros(16, dtype=torch.uint8)            # a CUDA generator's state
    saved["rng"]["aug_device"] = "cuda"
    checkpoint.save(folder / "last.pt", saved)
    ui, written, results = StopAfter(10 ** 6), (folder / "last.pt").read_bytes(), []
    for _ in range(2):     # twice from the same checkpoint: the reseeded generator repeats itself
        (folder / "last.pt").write_bytes(written)
        results.append(run.resume(folder, RunOptions(device="cpu", threads=1, download=False), None, ui))
    assert [r.history[-1]["loss"] for r in results][0] == results[1].history[-1]["loss"]   # deterministic
    notes = [m for m in ui.messages if "augmentation generator" in m]
    assert len(notes) == 2 and notes[0] == (
        "netspec: last.pt's augmentation generator was saved on cuda, not cpu: reseeded from the seed, epoch and "
        "step, so the rest of epoch 1 augments differently from the uninterrupted run")


# ── item 3: eval as the run trained ───────────────────────────────────────────────────────────────────────────

def test_eval_of_an_amp_run_uses_bf16_autocast_and_reproduces_its_test_loss(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(TINY)
    result = run.start(str(tmp_path / "tiny.yaml"), {**FLAGS, "amp": True},
                       RunOptions(device="cpu", subset=64, out=str(tmp_path / "runs"), download=False, threads=1))
    assert main(["eval", str(result.run_dir / "best.pt"), "--subset", "64", "--json", "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["amp"] is True and evaluated["channels_last"] is True
    assert evaluated["test_loss"] == pytest.approx(result.history[-1]["test_loss"], rel=1e-6)
    assert main(["eval", str(result.run_dir), "--subset", "64", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("(cpu, bf16 autocast as trained)")


# ── item 10: evaluation without per-batch copies; checkpoints on the CPU ──────────────────────────────────────

def test_evaluation_makes_no_tensor_from_host_values_per_batch(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    images, labels = torch.zeros(12, 1, 8, 8, dtype=torch.uint8), torch.zeros(12, dtype=torch.long)
    made = []
    real = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(a) or real(*a, **k))
    loss, acc, count = loop.evaluate_on(model, images, labels, (8, 8), 1)
    assert count == 12 and acc == 1.0 * (model(torch.zeros(1, 1, 8, 8)).argmax(1) == 0).item()
    assert len(made) == 0


def test_checkpoint_tensors_are_copied_to_the_cpu(monkeypatch, tmp_path):
    moved = []

    class OnDevice(torch.Tensor):   # a tensor that says it lives elsewhere until copied to the CPU
        def to(self, *args, **kwargs):
            moved.append(args)
            return torch.Tensor.to(torch.Tensor(self.as_subclass(torch.Tensor)), *args, **kwargs)

    weight = torch.ones(2).as_subclass(OnDevice)
    state = {"model": {"w": weight}, "optimizer": {"state": {0: {"momentum_buffer": weight}}, "param_groups": [
        {"params": [0]}]}, "rng": {"cuda": [weight, 3]}, "epoch": 1}
    copied = checkpoint.on_cpu(state)
    tensors = [copied["model"]["w"], copied["optimizer"]["state"][0]["momentum_buffer"], copied["rng"]["cuda"][0]]
    assert all(type(t) is torch.Tensor and t.device.type == "cpu" for t in tensors) and len(moved) == 3
    assert copied["rng"]["cuda"][1] == 3 and copied["epoch"] == 1
    monkeypatch.setattr(checkpoint, "on_cpu", lambda value: moved.append("save") or value)
    checkpoint.save(tmp_path / "c.pt", {"model": {}})
    assert moved[-1] == "save"


# ── item 9: the torch floor ───────────────────────────────────────────────────────────────────────────────────

def test_the_torch_floor_has_init_process_groups_device_id():
    """distributed.init passes device_id= to init_process_group, which torch has from 2.2 on."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (floor,) = [re.fullmatch(r"torch>=(\d+)\.(\d+).*", d) for d in deps if d.startswith("torch>")]
    assert (int(floor[1]), int(floor[2])) >= (2, 2)
