"""fp32 against bf16 on the CPU: our Hiera, timm's and the official one, same architecture, same process.

    python benchmarks/cpu_precision.py                                   # Hiera-B 16x224, batch 1, forward
    python benchmarks/cpu_precision.py --modes forward train mae --batch-size 8 --repeats 3
    python benchmarks/cpu_precision.py --frames 8 --compile              # smaller clips; + torch.compile

Every variant of a mode (implementation x precision) runs once per round, round after round, so load
from other jobs hits all of them alike; the table gives the median seconds per step and the ratios to
our fp32 step and to timm's step at the same precision (> 1: ours is faster). Precisions: ``fp32``;
``autocast`` = ``torch.autocast("cpu", torch.bfloat16)`` over an fp32 model; ``bf16`` = the model and the
clips in bf16 (``model.to(torch.bfloat16)``), forward only. Modes: ``forward`` (inference mode),
``train`` (forward + backward of the classifier), ``mae`` (forward + backward of MAE pretraining at 90%
masking; timm has no MAE, so the reference is the official one). Weights are random (timing only).
"""
import argparse
import copy
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch

from hiera_video.models import create_model, model_architecture
from hiera_video.utils.memory import keep_freed_memory
from model_speed import make_step as model_speed_step  # benchmarks/, beside this script

Step = Callable[[], None]


def build_models(name: str, input_size: Tuple[int, ...]) -> Dict[str, torch.nn.Module]:
    """Ours, timm's and the official model of ``name`` (an ``mae_`` name: ours and the official MAE)."""
    from hiera.hiera import Hiera as OfficialHiera
    from hiera.hiera_mae import MaskedAutoencoderHiera as OfficialMAE

    _, architecture = model_architecture(name)
    architecture = {**architecture, "input_size": input_size}
    torch.manual_seed(0)
    official = (OfficialMAE if name.startswith("mae_") else OfficialHiera)(**architecture)
    ours = create_model(name, input_size=input_size)
    ours.load_state_dict(official.state_dict())
    models = {"ours": ours, "official": official}
    if not name.startswith("mae_"):
        from timm.models.hiera import Hiera as TimmHiera

        timm_architecture = {k: v for k, v in architecture.items() if k != "input_size"}
        models["timm"] = TimmHiera(img_size=input_size, **timm_architecture)
    return models


def make_step(model: torch.nn.Module, mode: str, precision: str, clips: torch.Tensor, mask,
              compile_model: bool = False) -> Step:
    """One step of ``mode`` at ``precision`` ("fp32", "autocast", "bf16"), of ``torch.compile(model)`` if
    asked: :func:`model_speed.make_step` on the model and clips that precision runs."""
    if precision == "bf16":
        model, clips = copy.deepcopy(model).to(torch.bfloat16), clips.to(torch.bfloat16)
    model.train(mode != "forward")
    if compile_model:
        model = torch.compile(model)
    return model_speed_step(model, mode, clips, mask, torch.bfloat16 if precision == "autocast" else torch.float32)


def interleaved_medians(steps: Dict[str, Step], repeats: int) -> Dict[str, float]:
    """Median seconds per call of each step, the steps taking turns ``repeats`` times after a warm-up."""
    for step in steps.values():
        step()
    times: Dict[str, List[float]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def run_mode(mode: str, args: argparse.Namespace) -> List[dict]:
    """Rows (implementation, precision, seconds) of one mode."""
    name = f"mae_{args.model}" if mode == "mae" else args.model
    _, architecture = model_architecture(name)
    input_size = (args.frames, *architecture["input_size"][1:]) if args.frames else architecture["input_size"]
    models = build_models(name, tuple(input_size))
    clips = torch.randn(args.batch_size, 3, *input_size)
    mask = models["ours"].get_random_mask(clips, 0.9) if mode == "mae" else None
    precisions = ["fp32", "autocast"] + (["bf16"] if mode == "forward" else [])
    variants = [(impl, model, False) for impl, model in models.items()]
    if args.compile:
        variants.append(("ours compiled", models["ours"], True))
    steps = {(impl, precision): make_step(model, mode, precision, clips, mask, compile_model)
             for impl, model, compile_model in variants for precision in precisions
             if not (impl == "official" and precision == "bf16")}  # the official model is the fp32 / autocast reference
    medians = interleaved_medians(steps, args.repeats)
    return [{"mode": mode, "impl": impl, "precision": precision, "seconds": seconds}
            for (impl, precision), seconds in medians.items()]


def print_table(rows: List[dict], batch_size: int) -> None:
    """A Markdown table with the ratios to our fp32 step and to timm (or official) at the same precision."""
    print("| mode | implementation | precision | s/step | clips/s | our fp32 / this | reference / ours |")
    print("|---|---|---|---|---|---|---|")
    seconds = {(r["mode"], r["impl"], r["precision"]): r["seconds"] for r in rows}
    for r in rows:
        ours_fp32 = seconds[(r["mode"], "ours", "fp32")]
        reference = "timm" if (r["mode"], "timm", r["precision"]) in seconds else "official"
        ref = seconds.get((r["mode"], reference, r["precision"]))
        versus = f"{ref / r['seconds']:.2f}x vs {reference}" if r["impl"].startswith("ours") and ref else ""
        print(f"| {r['mode']} | {r['impl']} | {r['precision']} | {r['seconds']:.3f} | "
              f"{batch_size / r['seconds']:.2f} | {ours_fp32 / r['seconds']:.2f}x | {versus} |", flush=True)


def main(argv=None) -> None:
    """Parse arguments, run the modes and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hiera_base_16x224", help="video classifier name (mae mode adds mae_)")
    parser.add_argument("--modes", nargs="+", default=["forward"], choices=["forward", "train", "mae"])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--frames", type=int, help="frames per clip instead of the model's (a multiple of 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--glibc-malloc-defaults", action="store_true",
                        help="leave glibc's malloc thresholds as they are (default: keep freed memory, as the tools do)")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile of our model (inductor with freezing: weights prepacked)")
    args = parser.parse_args(argv)
    kept_memory = not args.glibc_malloc_defaults and keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # fold and prepack weights for oneDNN (applies to inference)
    print(f"{args.model}, batch {args.batch_size}, {args.frames or 'default'} frames, CPU "
          f"({torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads), torch "
          f"{torch.__version__}, {args.repeats} interleaved repeats, medians, "
          f"{'freed memory kept' if kept_memory else 'glibc malloc defaults'}")
    rows = [row for mode in args.modes for row in run_mode(mode, args)]
    print_table(rows, args.batch_size)


if __name__ == "__main__":
    main()
