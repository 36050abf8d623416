"""Throughput of our Hiera against the official implementation (hiera-transformer), same weights, same process.

    python benchmarks/model_speed.py                                  # hiera_base_16x224, CPU fp32, batch 1
    python benchmarks/model_speed.py --modes forward train mae --batch-size 2
    python benchmarks/model_speed.py --device cuda --dtype bf16 fp16 --compile

For each mode the two models run alternately, ``--repeats`` times after a warm-up, and the median time per
step is reported with clips/s and the ratio official / ours (> 1: ours is faster). On CUDA the peak memory
of each is reported too. Modes: ``forward`` (inference), ``train`` (forward + backward of the classifier),
``mae`` (forward + backward of MAE pretraining at 90% masking, the same mask for both).
"""
import argparse
import statistics
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


def peak_memory_mib(step: Callable[[], None], device: str) -> float:
    """Peak CUDA memory of one call of ``step`` (NaN on CPU, where torch does not track it)."""
    if device != "cuda":
        return float("nan")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def compare(mode: str, name: str, batch_size: int, device: str, dtype, repeats: int, compile_: bool) -> Dict:
    """Time our model and the official one alternately; returns a row of the results table."""
    model_name = f"mae_{name}" if mode == "mae" else name
    ours, official = build_pair(model_name, device)
    clips = torch.randn(batch_size, 3, *ours.input_size, device=device)
    mask = ours.get_random_mask(clips, 0.9) if mode == "mae" else None
    if compile_:
        ours = torch.compile(ours)
    steps = {"ours": make_step(ours, mode, clips, mask, dtype),
             "official": make_step(official, mode, clips, mask, dtype)}
    times: Dict[str, List[float]] = {key: [] for key in steps}
    for key, step in steps.items():
        step()  # warm-up (and compilation)
    for _ in range(repeats):
        for key, step in steps.items():
            times[key].append(timed(step, device))
    median = {key: statistics.median(values) for key, values in times.items()}
    memory = {key: peak_memory_mib(step, device) for key, step in steps.items()}
    return {
        "mode": mode, "dtype": str(dtype).removeprefix("torch."), "ours_s": median["ours"],
        "official_s": median["official"], "ours_clips_s": batch_size / median["ours"],
        "official_clips_s": batch_size / median["official"], "ratio": median["official"] / median["ours"],
        "ours_mib": memory["ours"], "official_mib": memory["official"],
    }


def main(argv=None) -> None:
    """Parse arguments, run every (mode, dtype) comparison and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hiera_base_16x224", help="classifier name (MAE mode adds mae_)")
    parser.add_argument("--modes", nargs="+", default=["forward"], choices=["forward", "train", "mae"])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", nargs="+", default=None, choices=["fp32", "bf16", "fp16"],
                        help="default: fp32 on CPU, fp32 bf16 fp16 on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    args = parser.parse_args(argv)
    dtypes = args.dtype or (["fp32"] if args.device == "cpu" else ["fp32", "bf16", "fp16"])
    names = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    print(f"{args.model}, batch {args.batch_size}, {args.device} "
          f"({torch.get_num_threads()} threads), torch {torch.__version__}, {args.repeats} repeats")
    print("| mode | dtype | ours s/step | official s/step | ours clips/s | official clips/s | speed-up "
          "| ours MiB | official MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in args.modes:
        for dtype in dtypes:
            row = compare(mode, args.model, args.batch_size, args.device, names[dtype], args.repeats,
                          args.compile)
            print(f"| {row['mode']} | {row['dtype']} | {row['ours_s']:.3f} | {row['official_s']:.3f} | "
                  f"{row['ours_clips_s']:.2f} | {row['official_clips_s']:.2f} | {row['ratio']:.2f}x | "
                  f"{row['ours_mib']:.0f} | {row['official_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
