"""Item 1 — compiled-module overhead: netspec's GraphModule (A) against hand-written PyTorch (B), side by side.

B is torchvision's model when torchvision is importable in this interpreter, else `reference_models` (the same
module tree, forward and init, written out).  A is the torchvision-faithful spec in specs/imagenet/, compiled by
netspec; B's state_dict is loaded into A (the keys match), and the two must agree on one eval-mode batch before
anything is timed.  Then a training step (forward, cross-entropy, backward, SGD step) and an inference pass
alternate A, B, A, B … in this one process on the same inputs.

Run by bench/run.py in a worker process (so it can use a torchvision venv): `python bench/overhead.py --json`.
`--profile NAME` instead prints where A and B spend their time (torch.profiler, by op).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]  # run as a script from any folder, in any venv that has netspec's deps

import netspec  # noqa: E402
import reference_models  # noqa: E402
from timing import alternate, calibrate  # noqa: E402

MODELS = ("resnet18", "densenet121", "googlenet", "vgg11")
NUM_CLASSES = 10  # the course's; it only shrinks the last layer


@dataclass
class Pair:
    name: str
    a: torch.nn.Module
    b: torch.nn.Module
    control: torch.nn.Module  # a second B with B's weights: B′/B is the measurement's own floor (an A/A test)
    baseline: str  # "torchvision" or "bench/reference_models.py"
    max_abs_diff: float


def torchvision_model(name: str):
    """torchvision's `name` (no aux heads, no pretrained weights)."""
    import torchvision

    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    return getattr(torchvision.models, name)(num_classes=NUM_CLASSES, **kwargs)


def torchvision_version() -> str | None:
    if importlib.util.find_spec("torchvision") is None:
        return None
    import torchvision

    return torchvision.__version__


def make_pair(name: str, size: int, use_torchvision: bool = True, seed: int = 0) -> Pair:
    """A (netspec) and B (hand-written) with B's weights in A, checked to compute the same function."""
    torch.manual_seed(seed)
    if use_torchvision and importlib.util.find_spec("torchvision") is not None:
        build, baseline = (lambda: torchvision_model(name)), "torchvision"
    else:
        build, baseline = (lambda: reference_models.reference(name, NUM_CLASSES)), "bench/reference_models.py"
    b, control = build(), build()
    control.load_state_dict(b.state_dict())
    a = netspec.load(ROOT / "specs" / "imagenet" / f"{name}.yaml", num_classes=NUM_CLASSES, size=size)
    a.load_state_dict(b.state_dict())  # strict: the spec promises torchvision's keys
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        diff = (a.eval()(x) - b.eval()(x)).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"{name}: netspec and {baseline} disagree by {diff:g} with the same weights")
    return Pair(name, a, b, control, baseline, diff)


def train_step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One plain training step; a small lr so many steps stay finite (NaNs would change the arithmetic)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return step


def infer_fn(model: torch.nn.Module, x: torch.Tensor):
    def infer():
        model.eval()
        with torch.inference_mode():
            model(x)
    return infer


def measure(pair: Pair, batch: int, size: int, repeats: int, target_s: float, budget_s: float) -> dict:
    torch.manual_seed(1)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, NUM_CLASSES, (batch,))
    result = {"baseline": pair.baseline, "max_abs_diff": pair.max_abs_diff, "batch": batch, "size": size}
    for mode, make in (("train", lambda m: train_step_fn(m, x, y)), ("infer", lambda m: infer_fn(m, x))):
        fns = {"netspec": make(pair.a), "baseline": make(pair.b), "control": make(pair.control)}
        for fn in fns.values():
            fn()  # first calls allocate; then calibrate on a warm call
        inner = calibrate(fns["baseline"], target_s)
        result[mode] = alternate(fns, "baseline", repeats, warmup=2, inner=inner, budget_s=budget_s)
    return result


def profile(name: str, batch: int, size: int, mode: str) -> None:
    """Prints the top ops of A and B for one mode (train or infer): where any difference comes from."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    pair = make_pair(name, size)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, NUM_CLASSES, (batch,))
    for label, model in (("A netspec", pair.a), (f"B {pair.baseline}", pair.b)):
        fn = train_step_fn(model, x, y) if mode == "train" else infer_fn(model, x)
        for _ in range(3):
            fn()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                fn()
        print(f"===== {label}: {name} {mode}, 5 calls")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=21, help="rounds at least (the budget may add more)")
    parser.add_argument("--target", type=float, default=0.03, help="seconds per timed sample (inner loop)")
    parser.add_argument("--ablation", action="store_true",
                        help="also time densenet121 with A's in-place ReLUs turned off (what the compiler fix removed)")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="seconds per model and mode: repeats go on until it is spent (at least --repeats)")
    parser.add_argument("--profile", metavar="NAME", help="profile one model instead of timing")
    parser.add_argument("--mode", default="train", choices=("train", "infer"), help="with --profile")
    parser.add_argument("--no-torchvision", action="store_true", help="use bench/reference_models.py as B")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: then thread CPU time measures all the work; see timing.py)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.profile:
        profile(args.profile, args.batch, args.size, args.mode)
        return 0
    out = {"torch": torch.__version__, "torchvision": None if args.no_torchvision else torchvision_version(),
           "threads": torch.get_num_threads(), "min_repeats": args.repeats,
           "budget_s": args.budget, "models": {}}
    for name in args.models.split(","):
        pair = make_pair(name, args.size, not args.no_torchvision)
        out["models"][name] = measure(pair, args.batch, args.size, args.repeats, args.target, args.budget)
        m = out["models"][name]
        print(f"{name}: " + "; ".join(f"{mode} A/B {m[mode]['netspec']['cpu']['ratio']['median']:.3f} control "
                                      f"{m[mode]['control']['cpu']['ratio']['median']:.3f} ({m[mode]['repeats']})"
                                      for mode in ("train", "infer")), file=sys.stderr)
    if args.ablation:
        pair = make_pair("densenet121", args.size, not args.no_torchvision)
        for module in pair.a.modules():
            if isinstance(module, torch.nn.ReLU):
                module.inplace = False  # as netspec compiled every ReLU before it learned when in place is safe
        out["ablation"] = {"densenet121, ReLUs not in place": measure(pair, args.batch, args.size, args.repeats,
                                                                       args.target, args.budget / 2)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
