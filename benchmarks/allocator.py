"""glibc's default malloc against :func:`hiera_video.utils.memory.keep_freed_memory` (what the tools run).

    python benchmarks/allocator.py                      # Hiera-B 16x224 forward, fp32 and bf16 autocast
    python benchmarks/allocator.py --modes forward train --rounds 3

malloc's state belongs to the process, so the two settings cannot share one: each round starts one child
process per setting, one after the other (the reference, glibc's defaults, and the kept memory), and each
child times every variant (ours and timm's Hiera-B with shared weights, fp32 and bf16 autocast) after a
warm-up. The table gives the median over rounds and "default / kept" (> 1: keeping freed memory is faster).
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

SETTINGS = ("default", "kept")


def child(setting: str, modes, repeats: int) -> None:
    """Time every variant under ``setting`` and print {variant: median seconds} as JSON."""
    import torch

    from cpu_precision import build_models, make_step  # benchmarks/, beside this script
    from hiera_video.models import model_architecture
    from hiera_video.utils.memory import keep_freed_memory

    if setting == "kept" and not keep_freed_memory():
        raise SystemExit("keep_freed_memory does not apply here (not glibc, or MALLOC_* / LD_PRELOAD set)")
    input_size = tuple(model_architecture("hiera_base_16x224")[1]["input_size"])
    models = build_models("hiera_base_16x224", input_size)
    clips = torch.randn(1, 3, *input_size)
    medians = {}
    for mode in modes:
        for impl in ("ours", "timm"):
            for precision in ("fp32", "autocast"):
                step = make_step(models[impl], mode, precision, clips, None)
                step()  # warm-up
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - start)
                medians[f"{mode}|{impl}|{precision}"] = statistics.median(times)
    print(json.dumps(medians))


def main(argv=None) -> None:
    """Alternate the two settings' child processes and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=["forward"], choices=["forward", "train"])
    parser.add_argument("--rounds", type=int, default=3, help="child processes per setting")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant in each child")
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.modes, args.repeats)
    runs = {setting: [] for setting in SETTINGS}
    for _ in range(args.rounds):
        for setting in SETTINGS:
            command = [sys.executable, __file__, "--child", setting, "--modes", *args.modes,
                       "--repeats", str(args.repeats)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            runs[setting].append(json.loads(output.strip().splitlines()[-1]))
    print(f"Hiera-B 16x224, batch 1, {args.rounds} rounds of a child process per setting x {args.repeats} steps, "
          "medians")
    print("| mode | implementation | precision | default s/step | kept s/step | default / kept |")
    print("|---|---|---|---|---|---|")
    for variant in runs["default"][0]:
        default, kept = (statistics.median(run[variant] for run in runs[s]) for s in SETTINGS)
        print(f"| {' | '.join(variant.split('|'))} | {default:.3f} | {kept:.3f} | {default / kept:.2f}x |")


if __name__ == "__main__":
    main()
