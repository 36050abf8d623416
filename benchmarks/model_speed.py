"""Throughput of our Hiera against the official implementation (hiera-transformer), same weights, same process.

    python benchmarks/model_speed.py                                  # hiera_base_16x224, CPU fp32, batch 1
    python benchmarks/model_speed.py --modes forward train mae --batch-size 2
    python benchmarks/model_speed.py --device cuda --dtype bf16 fp16 --compile

For each mode the two models run alternately, ``--repeats`` times after a warm-up, and the median time per
step is reported with clips/s and the ratio reference / ours (> 1: ours is faster). The reference is the
official model, except in ``checkpointing`` mode. On CUDA the peak memory
of each is reported too. Modes: ``forward`` (inference), ``train`` (forward + backward of the classifier),
``mae`` (forward + backward of MAE pretraining at 90% masking, the same mask for both), and
``checkpointing`` (our ``train`` step with activation checkpointing against ours without: memory).
Peak memory is the CUDA allocator's peak, or on CPU the peak resident memory a fresh process adds by one
step (measured in child processes, since freed CPU memory stays resident).
"""
import argparse
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

import torch

from hiera_video.models import create_model, model_architecture


def build_pair(name: str, device: str):
    """Our model and the official one with identical weights."""
    from hiera.hiera import Hiera as OfficialHiera
    from hiera.hiera_mae import MaskedAutoencoderHiera as OfficialMAE

    _, architecture = model_architecture(name)
    official_class = OfficialMAE if name.startswith("mae_") else OfficialHiera
    torch.manual_seed(0)
    official = official_class(**architecture).to(device)
    ours = create_model(name).to(device)
    ours.load_state_dict(official.state_dict())
    return ours, official


def make_step(model: torch.nn.Module, mode: str, clips: torch.Tensor, mask, dtype) -> Callable[[], None]:
    """One benchmark step of ``mode`` for ``model``."""
    autocast = torch.autocast(clips.device.type, dtype=dtype, enabled=dtype != torch.float32)

    def forward():
        with torch.inference_mode(), autocast:
            model(clips)

    def train():
        with autocast:
            model(clips).float().sum().backward()
        model.zero_grad(set_to_none=True)

    def mae():
        with autocast:
            loss = model(clips, mask=mask)[0]
        loss.backward()
        model.zero_grad(set_to_none=True)

    model.train(mode != "forward")
    return {"forward": forward, "train": train, "mae": mae}[mode]


def timed(step: Callable[[], None], device: str) -> float:
    """Seconds of one call of ``step``, synchronized on CUDA."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def cuda_peak_memory_mib(step: Callable[[], None]) -> float:
    """Peak CUDA memory of one call of ``step``."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def cpu_peak_memory_mib(args: argparse.Namespace, mode: str, which: str) -> float:
    """Peak resident memory of a fresh process that builds the models of ``mode`` and runs one step of
    ``which`` ("ours" or "reference"), less the same process's peak after building only. A fresh process
    is needed because freed CPU memory stays resident in the allocator and hides later peaks."""
    def child_peak(run_step: bool) -> float:
        command = [sys.executable, __file__, "--model", args.model, "--batch-size", str(args.batch_size),
                   "--modes", mode, "--memory-child", which if run_step else "none"]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return float(out.strip().splitlines()[-1])

    return child_peak(True) - child_peak(False)


def run_memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: build, run one step of one model (unless "none"), print the peak RSS in MiB."""
    ours, reference = build_models(args.modes[0], args.model, "cpu")
    step_kind = "train" if args.modes[0] == "checkpointing" else args.modes[0]
    clips = torch.randn(args.batch_size, 3, *ours.input_size)
    mask = ours.get_random_mask(clips, 0.9) if step_kind == "mae" else None
    if args.memory_child != "none":
        model = ours if args.memory_child == "ours" else reference
        make_step(model, step_kind, clips, mask, torch.float32)()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(peak_kib / 1024)


def build_models(mode: str, name: str, device: str):
    """(ours, reference): the official model with our weights, or for ``checkpointing`` our model with
    activation checkpointing against ours without."""
    if mode != "checkpointing":
        return build_pair(f"mae_{name}" if mode == "mae" else name, device)
    ours = create_model(name).to(device)
    ours.set_activation_checkpointing(True)
    reference = create_model(name).to(device)
    reference.load_state_dict(ours.state_dict())
    return ours, reference


def compare(mode: str, args: argparse.Namespace, dtype) -> Dict:
    """Time our model and the reference alternately; returns a row of the results table."""
    name, batch_size, device = args.model, args.batch_size, args.device
    ours, reference = build_models(mode, name, device)
    step_kind = "train" if mode == "checkpointing" else mode
    clips = torch.randn(batch_size, 3, *ours.input_size, device=device)
    mask = ours.get_random_mask(clips, 0.9) if mode == "mae" else None
    if args.compile:
        ours = torch.compile(ours)
    steps = {"ours": make_step(ours, step_kind, clips, mask, dtype),
             "reference": make_step(reference, step_kind, clips, mask, dtype)}
    for step in steps.values():
        step()  # warm-up (and compilation)
    times: Dict[str, List[float]] = {key: [] for key in steps}
    for _ in range(args.repeats):
        for key, step in steps.items():
            times[key].append(timed(step, device))
    median = {key: statistics.median(values) for key, values in times.items()}
    if device == "cuda":
        memory = {key: cuda_peak_memory_mib(step) for key, step in steps.items()}
    else:
        memory = {key: cpu_peak_memory_mib(args, mode, key) for key in steps}
    return {"median": median, "memory": memory, "ratio": median["reference"] / median["ours"]}


def main(argv=None) -> None:
    """Parse arguments, run every (mode, dtype) comparison and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hiera_base_16x224", help="classifier name (MAE mode adds mae_)")
    parser.add_argument("--modes", nargs="+", default=["forward"], choices=["forward", "train", "mae", "checkpointing"])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", nargs="+", default=None, choices=["fp32", "bf16", "fp16"],
                        help="default: fp32 on CPU, fp32 bf16 fp16 on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    parser.add_argument("--memory-child", choices=["ours", "reference", "none"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return run_memory_child(args)
    dtypes = args.dtype or (["fp32"] if args.device == "cpu" else ["fp32", "bf16", "fp16"])
    names = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    print(f"{args.model}, batch {args.batch_size}, {args.device} "
          f"({torch.get_num_threads()} threads), torch {torch.__version__}, {args.repeats} repeats")
    print("| mode | dtype | ours s/step | reference s/step | ours clips/s | reference clips/s | speed-up "
          "| ours peak MiB | reference peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in args.modes:
        for dtype in dtypes:
            row = compare(mode, args, names[dtype])
            ours, ref = row["median"]["ours"], row["median"]["reference"]
            print(f"| {mode} | {dtype} | {ours:.3f} | {ref:.3f} | {args.batch_size / ours:.2f} | "
                  f"{args.batch_size / ref:.2f} | {row['ratio']:.2f}x | {row['memory']['ours']:.0f} | "
                  f"{row['memory']['reference']:.0f} |", flush=True)

if __name__ == "__main__":
    main()
