"""Cost of MaskFeat HOG targets against normalized-pixel targets, as a ratio measured in one process.

    python benchmarks/hog_target.py [--batch 2] [--rounds 5] [--step] [--device cpu]

Times, in interleaved rounds (medians reported), ``targets(x)`` of ``mae_hiera_base_16x224`` for 16x224
clips with ``MAE.TARGET pixel`` and ``hog``; with ``--step``, also a whole MAE training step (forward at
mask ratio 0.9 and backward) of each, so the HOG share of a step is visible. Ratio = HOG time / pixel time.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.models import create_model  # noqa: E402


def timed(fn, device: torch.device) -> float:
    """Seconds one call of ``fn`` takes (synchronizing CUDA around it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def training_step(model: torch.nn.Module, x: torch.Tensor) -> None:
    """One MAE forward at mask ratio 0.9 and its backward."""
    loss, _, _, _ = model(x, mask_ratio=0.9)
    loss.backward()


def main() -> None:
    """Parse arguments, time both targets (and steps with ``--step``), print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--step", action="store_true", help="also time whole MAE training steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    models = {target: create_model("mae_hiera_base_16x224", target=target).to(device)
              for target in ("pixel", "hog")}
    x = torch.randn(args.batch, 3, 16, 224, 224, device=device)
    jobs = {f"{target} target": (lambda m=model: m.targets(x)) for target, model in models.items()}
    if args.step:
        jobs.update({f"{target} MAE step": (lambda m=model: training_step(m, x)) for target, model in models.items()})
    for fn in jobs.values():  # warm-up
        fn()
    times = {name: [] for name in jobs}
    for _ in range(args.rounds):
        for name, fn in jobs.items():
            times[name].append(timed(fn, device))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"device {device}, batch {args.batch} clips of 16x224x224, {args.rounds} rounds, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    for name, seconds in medians.items():
        print(f"{name:>16}: {seconds * 1e3:9.2f} ms")
    print(f"HOG / pixel target cost: {medians['hog target'] / medians['pixel target']:.2f}x")
    if args.step:
        print(f"HOG / pixel MAE step: {medians['hog MAE step'] / medians['pixel MAE step']:.3f}x")


if __name__ == "__main__":
    main()
