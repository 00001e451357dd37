"""Item 5 — GPU benchmark, for a CUDA machine:  python bench/gpu.py  [--quick]  [--checks-only]  [--data-dir DIR]

The one command for a GPU session with little device time (about 6-8 minutes on an H200; give it 10):

    PYTHONPATH=$PWD timeout 570 python bench/gpu.py --quick --out "$OUT/gpu_results.json"

0. Checks of netspec's CUDA path that only a GPU can make (bench/gpu_checks.py; under a minute or two; alone
   with --checks-only, left out with --skip checks): `netspec train` then `netspec eval` on CUDA agree (eval runs
   as the run trained) and the first line names the precision the compute capability implies; last.pt loads
   on the CPU in a process that sees no GPU; cudnn.benchmark is on in a CUDA run; --device cuda:0 trains and
   cuda:COUNT is one line, exit 2; torchrun (NCCL) trains and --sync-bn behaves as docs/training.md says; a
   CPU run resumes on CUDA.  Each is recorded as passed (with details) or skipped with a reason; the exit
   status is 1 when any failed.  `--device cpu --checks-only` rehearses them (tests/test_bench.py).
1. Train-step images/s (forward, cross-entropy, backward, SGD step on synthetic batches already on the GPU) of
   the course networks at their course resolutions and batch sizes, and of the torchvision-faithful ResNet-50
   at 224 px, in three modes, side by side in one process:
     eager      fp32, NCHW (PyTorch defaults: cuDNN may use TF32 for convolutions)
     cl_bf16    channels_last memory format + bf16 autocast
     compile    cl_bf16 + torch.compile (compile time reported separately, not in images/s)
2. Time to 0.94 test accuracy on Fashion-MNIST with the fastest recipe here (bench/specs/fmnist_fast.yaml:
   a small ResNet at 28 px, one-cycle Nesterov SGD, flip+crop, label smoothing, bf16, channels_last, compiled),
   through netspec's own training API (`netspec.train.run.start`) when it is installed, else a minimal loop.
   The data must be on the machine: --data-dir, $NETSPEC_DATA or /usr/share/datasets/fashion-mnist (the four
   IDX .gz files, 30 MB; on a machine without network access, copy them into the checkout, e.g.
   data/fashion-mnist/, and pass --data-dir); without them this part is skipped with a message.  Compiled
   runs compile inside their first epoch; that time is estimated and reported separately (compile_s).

Writes bench/gpu_results.json (after every net and section, so a failure keeps what was done) and prints Markdown tables for docs/benchmarks.md.  A smoke test of the code
paths on a CPU (numbers meaningless): `python bench/gpu.py --device cpu --nets lenet --modes eager,cl_bf16
--steps 2 --epochs 1 --subset 2000 --no-compile-train`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import netspec  # noqa: E402

# spec, batch: the course's resolutions (the specs' defaults) and batch sizes; ResNet-50 at ImageNet's.
NETS = {"lenet": ("lenet", 256), "bn_lenet": ("bn_lenet", 256), "alexnet": ("alexnet", 128),
        "vgg11": ("vgg11", 128), "nin": ("nin", 128), "googlenet": ("googlenet", 128),
        "resnet18": ("resnet18", 256), "densenet": ("densenet", 256),
        "resnet50": (str(ROOT / "specs" / "imagenet" / "resnet50.yaml"), 128)}
QUICK_NETS = ("lenet", "resnet18", "resnet50")
MIN_TIMED_S = 1.0              # each (net, mode) is timed over at least this long (and --steps steps)
MODES = ("eager", "cl_bf16", "compile")
FAST_SPEC = BENCH / "specs" / "fmnist_fast.yaml"
LONGER_EPOCHS = 30             # the second try, when the spec's recipe (16 epochs) falls short of the target


# ── 1. throughput ─────────────────────────────────────────────────────────────────────────────────────────────

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, optimizer, x, y, mode: str):
    """One training step closure for `mode`; the loss is left on the device (no per-step sync)."""
    bf16 = mode in ("cl_bf16", "compile")
    forward = torch.compile(model) if mode == "compile" else model

    def step():
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def throughput(name: str, mode: str, device: torch.device, steps: int, scale: float) -> dict:
    """images/s of the train step of net `name` in `mode`; the first steps (and compilation) are untimed."""
    spec, batch = NETS[name]
    batch = max(2, int(batch * scale))
    torch.manual_seed(0)
    model = netspec.load(spec).to(device)
    shape = tuple(model.netspec_input_shape)
    classes = netspec.shaped_network(spec).output_shape[0]
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    if mode != "eager":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    step = make_step(model, optimizer, x, y, mode)
    start = time.perf_counter()
    for _ in range(3):  # warm-up: cuDNN autotuning, allocator, and (compile mode) compilation
        step()
    sync(device)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(3):
        step()
    sync(device)
    steps = max(steps, math.ceil(MIN_TIMED_S / ((time.perf_counter() - start) / 3)))  # tiny nets: more steps
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    elapsed = time.perf_counter() - start
    return {"batch": batch, "input": list(shape), "steps": steps, "images_per_s": round(batch * steps / elapsed, 1),
            "step_ms": round(elapsed / steps * 1e3, 3), "warmup_s": round(warmup_s, 2)}


def write_results(path: Path, results: dict) -> None:
    """Writes what is done so far (after every net and section: one failure or a killed run keeps the rest),
    to a temporary name first, so that the file is never half-written."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def compile_seconds(history: list[dict]) -> float | None:
    """The compilation inside a compiled run's training time, estimated as the first epoch's time (both
    compilations, full and short last batch, happen there) less the median of the later epochs'."""
    times = [b["train_time"] - a["train_time"] for a, b in zip([{"train_time": 0.0}] + history, history)]
    if len(times) < 2:
        return None
    later = sorted(times[1:])
    return round(max(0.0, times[0] - later[len(later) // 2]), 2)


def run_throughput(nets, modes, device, steps: int, scale: float, save=lambda partial: None) -> dict:
    results = {}
    for name in nets:
        results[name] = {}
        for mode in modes:
            try:
                results[name][mode] = throughput(name, mode, device, steps, scale)
            except Exception as err:  # one failing mode (e.g. no compiler toolchain) must not lose the rest
                results[name][mode] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            print(f"{name:10s} {mode:8s} {results[name][mode]}", file=sys.stderr, flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        save(results)
    return results


# ── 2. time to accuracy ───────────────────────────────────────────────────────────────────────────────────────

def data_dir(given: str | None) -> Path | None:
    for folder in (given, os.environ.get("NETSPEC_DATA"), "/usr/share/datasets/fashion-mnist"):
        if folder and (Path(folder) / "train-images-idx3-ubyte.gz").exists():
            return Path(folder)
    return None


def time_to_accuracy(folder: Path, device: torch.device, target: float, epochs: int | None, compile_: bool,
                     subset: int | None = None) -> dict:
    """The fast recipe to `target`: through netspec's train API if present, else `minimal_loop`."""
    try:
        from netspec.train import run
        from netspec.train.recipe import RunOptions
    except ImportError:
        return minimal_loop(folder, device, target, epochs or 16)
    options = RunOptions(device=device.type, compile=compile_, data_dir=str(folder), download=False,
                         progress=False, subset=subset, out=tempfile.mkdtemp(prefix="netspec-gpu-runs-"),
                         test_every_epoch=True)   # time to accuracy reads each epoch's test accuracy
    tries = []
    # The spec's recipe first; if it falls short, the same recipe over a longer one-cycle schedule.
    for run_epochs in ([epochs] if epochs else [None, LONGER_EPOCHS]):
        start = time.perf_counter()
        result = run.start(str(FAST_SPEC), {"epochs": run_epochs} if run_epochs else {}, options)
        history = [{"epoch": r["epoch"], "test_acc": round(r["test_acc"], 4),
                    "train_time": round(r["train_time"], 2)} for r in result.history]
        hit = next((r for r in history if r["test_acc"] >= target), None)
        compile_s = compile_seconds(history) if compile_ else None
        tries.append({"epochs": len(history), "history": history, "best_acc": max(r["test_acc"] for r in history),
                      "reached": hit is not None, "train_seconds_to_target": hit and hit["train_time"],
                      "compile_s": compile_s,
                      "train_seconds_to_target_without_compile": hit and round(hit["train_time"] - (compile_s or 0), 2),
                      "epochs_to_target": hit and hit["epoch"], "run_wall_s": round(time.perf_counter() - start, 1)})
        print(f"time to accuracy: {tries[-1]}", file=sys.stderr, flush=True)
        if hit:
            break
    return {"loop": "netspec.train", "spec": str(FAST_SPEC.relative_to(ROOT)), "compile": compile_,
            "recipe": dict(netspec.load_spec(FAST_SPEC).train), "device": result.device, "target": target,
            "tries": tries, **tries[-1]}


def read_idx(path: Path) -> torch.Tensor:
    """An IDX .gz file as a uint8 tensor (images N×28×28 or labels N)."""
    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def minimal_loop(folder: Path, device: torch.device, target: float, epochs: int) -> dict:
    """Without netspec.train: the same recipe, written flat (whole data on the device, batches by index)."""
    recipe = netspec.load_spec(FAST_SPEC).train
    train_x = read_idx(folder / "train-images-idx3-ubyte.gz").to(device)[:, None]
    train_y = read_idx(folder / "train-labels-idx1-ubyte.gz").long().to(device)
    test_x = read_idx(folder / "t10k-images-idx3-ubyte.gz").to(device)[:, None]
    test_y = read_idx(folder / "t10k-labels-idx1-ubyte.gz").long().to(device)
    torch.manual_seed(0)
    model = netspec.load(FAST_SPEC).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=0.9, nesterov=True,
                                weight_decay=recipe["weight_decay"])
    steps_per_epoch = len(train_y) // recipe["batch_size"]
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe["lr"], total_steps=epochs * steps_per_epoch)
    history, train_time = [], 0.0
    for epoch in range(epochs):
        sync(device)
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_y), device=device)[: steps_per_epoch * recipe["batch_size"]]
        for idx in order.view(steps_per_epoch, -1):
            x = augment(train_x[idx]).float().div_(255).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), train_y[idx], label_smoothing=recipe["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        sync(device)
        train_time += time.perf_counter() - start
        history.append({"epoch": epoch + 1, "test_acc": round(accuracy(model, test_x, test_y), 4),
                        "train_time": round(train_time, 2)})
        print(history[-1], file=sys.stderr, flush=True)
    hit = next((r for r in history if r["test_acc"] >= target), None)
    return {"loop": "minimal (bench/gpu.py)", "spec": str(FAST_SPEC.relative_to(ROOT)), "history": history,
            "target": target, "reached": hit is not None, "train_seconds_to_target": hit and hit["train_time"],
            "epochs_to_target": hit and hit["epoch"]}


def augment(x: torch.Tensor) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to 2 px (pad + crop), per example, on the device."""
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2))
    dy, dx = torch.randint(0, 5, (2,)).tolist()  # one shift per batch: simple, and enough for a fallback
    return padded[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]


@torch.no_grad()
def accuracy(model, images, labels) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), 2000):
        x = images[start:start + 2000].float().div_(255).contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=images.device.type == "cuda"):
            correct += int((model(x).argmax(1) == labels[start:start + 2000]).sum())
    return correct / len(labels)


# ── report ────────────────────────────────────────────────────────────────────────────────────────────────────

def markdown(results: dict) -> str:
    modes = results["modes"]
    lines = [f"GPU: {results['gpu']}, torch {results['torch']}."]
    if results.get("checks"):
        lines.append("CUDA-path checks: " + ", ".join(
            f"{name} {'skipped' if 'skipped' in check else 'passed' if check.get('passed') else 'FAILED'}"
            for name, check in results["checks"].items()) + ".")
    if results["throughput"]:
        lines += ["Train-step images/s (batch as the course; synthetic data on the GPU); × = speed-up over eager.",
                  "", "| network | input | batch | " + " | ".join(modes) + " |", "|---|---|---|" + "---|" * len(modes)]
    for name, by_mode in results["throughput"].items():
        ok = next((m for m in by_mode.values() if "images_per_s" in m), None)
        eager = by_mode.get("eager", {}).get("images_per_s")
        cells = []
        for mode in modes:
            m = by_mode.get(mode, {})
            if "images_per_s" not in m:
                cells.append("error")
                continue
            gain = f" ({m['images_per_s'] / eager:.2f}×)" if eager and mode != "eager" else ""
            cells.append(f"{m['images_per_s']:,.0f}{gain}")
        shape = "×".join(map(str, ok["input"])) if ok else "?"
        lines.append(f"| {name} | {shape} | {ok['batch'] if ok else '?'} | " + " | ".join(cells) + " |")
    tta = results.get("time_to_accuracy")
    if isinstance(tta, dict) and "history" in tta:
        lines += ["", f"Time to {tta['target']} test accuracy ({tta['spec']}, {tta['loop']}): "
                      + (f"{tta['train_seconds_to_target']} s of training, epoch {tta['epochs_to_target']}"
                         + (f" (of which ~{tta['compile_s']} s torch.compile)" if tta.get("compile_s") else "")
                         if tta["reached"] else f"not reached (best {max(r['test_acc'] for r in tta['history'])})")
                      + "; per epoch: " + ", ".join(f"{r['test_acc']:.4f}@{r['train_time']}s" for r in tta["history"])]
    elif tta:
        lines += ["", f"Time to accuracy: {tta}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three nets, fewer steps, 3-epoch accuracy run")
    parser.add_argument("--nets", help=f"comma-separated, from {', '.join(NETS)}")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--steps", type=int, help="timed steps per (net, mode); default 30 (10 with --quick)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--data-dir", help="folder with Fashion-MNIST's four IDX .gz files")
    parser.add_argument("--target", type=float, default=0.94)
    parser.add_argument("--epochs", type=int, help="override the fast recipe's epochs")
    parser.add_argument("--no-compile-train", action="store_true", help="train the accuracy run without compile")
    parser.add_argument("--subset", type=int, help="accuracy run on the first N train/test examples (smoke runs)")
    parser.add_argument("--skip", choices=("checks", "throughput", "accuracy"), action="append", default=[])
    parser.add_argument("--checks-only", action="store_true", help="only section 0, the CUDA path's checks")
    parser.add_argument("--out", type=Path, default=BENCH / "gpu_results.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device; use --device cpu for a smoke run", file=sys.stderr)
        return 1
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    nets = args.nets.split(",") if args.nets else list(QUICK_NETS if args.quick else NETS)
    modes = args.modes.split(",")
    scale = 1.0 if device.type == "cuda" else 1 / 32  # a CPU smoke run takes tiny batches
    results = {"gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke run)",
               "torch": torch.__version__, "modes": modes, "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    write_results(args.out, results)
    if args.checks_only:
        args.skip += ["throughput", "accuracy"]
    if "checks" not in args.skip:
        import gpu_checks

        work = Path(tempfile.mkdtemp(prefix="netspec-gpu-checks-"))
        results["checks"] = gpu_checks.run_checks(
            device, work, lambda partial: write_results(args.out, {**results, "checks": partial}))
        write_results(args.out, results)
    if "throughput" not in args.skip:
        steps = args.steps or (10 if args.quick else 30)
        results["throughput"] = run_throughput(nets, modes, device, steps, scale,
                                               lambda partial: write_results(args.out, {**results, "throughput": partial}))
        write_results(args.out, results)
    if "accuracy" not in args.skip:
        folder = data_dir(args.data_dir)
        epochs = args.epochs or (3 if args.quick else None)
        results["time_to_accuracy"] = (
            time_to_accuracy(folder, device, args.target, epochs, not args.no_compile_train, args.subset) if folder else
            "skipped: Fashion-MNIST not found (--data-dir, $NETSPEC_DATA or /usr/share/datasets/fashion-mnist)")
    write_results(args.out, results)
    print(markdown({"throughput": {}, **results}))
    failed = [name for name, check in results.get("checks", {}).items() if check.get("passed") is False]
    if failed:
        print(f"bench/gpu.py: checks failed: {', '.join(failed)} (details in {args.out})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
