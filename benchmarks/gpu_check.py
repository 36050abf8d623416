"""Acceptance run of every CUDA path of the toolkit on one GPU: one command, one table, one JSON.

    python benchmarks/gpu_check.py                      # on a CUDA machine: about 5 minutes on one GPU
    python benchmarks/gpu_check.py --json gpu_check.json
    python benchmarks/gpu_check.py --dry-run            # list the steps (automatic without CUDA)

Steps (each times out and fails alone; the exit status is 1 when any step failed):

- ``forward`` / ``train`` / ``mae``: Hiera-B 16x224 at batch 8, ours against timm's Hiera and the official
  one (MAE: official only) in fp32 and under bf16 and fp16 autocast; interleaved medians, clips/s, the ratio
  reference / ours and the CUDA allocator's peak memory of each;
- ``compile``: ``torch.compile`` of our classifier, bf16 forward, against eager (compile time reported);
- ``engine``: ``tools/run_net.py`` on a generated Kinetics-format dataset, ``NUM_GPUS 1``, fp16 autocast with
  the GradScaler, one epoch of training then multi-view testing;
- ``torchrun``: under ``torchrun --standalone --nproc_per_node 1``, an NCCL process group (all-reduce and
  one DDP step of a tiny Hiera), then the engine run with ``DIST_BACKEND nccl``;
- ``predict``: ``tools/predict.py --device cuda --precision auto`` with the engine step's checkpoint;
- ``ava``: the AVA detector (Hiera + RoI head) training steps and inference on CUDA under bf16 autocast.

Without CUDA (or with ``--dry-run``) every step is listed as skipped with its reason, so CI runs this file.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _timed_medians(steps: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    """Median seconds of each step (synchronized), the steps taking turns after a warm-up."""
    for step in steps.values():
        step()
    times: Dict[str, List[float]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            torch.cuda.synchronize()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def _peak_mib(step: Callable[[], None]) -> float:
    """The CUDA allocator's peak during one call of ``step``."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def _model_step(model: torch.nn.Module, mode: str, dtype: torch.dtype, clips: torch.Tensor, mask) -> Callable:
    """One forward (inference), train (fwd + bwd) or MAE (fwd + bwd) step under autocast to ``dtype``."""
    autocast = torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32)
    model.train(mode != "forward")

    def step():
        if mode == "forward":
            with torch.inference_mode(), autocast:
                model(clips)
            return
        with autocast:
            loss = model(clips, mask=mask)[0] if mode == "mae" else model(clips).float().sum()
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def _models(mode: str) -> Dict[str, torch.nn.Module]:
    """Ours, official and (classifier only) timm's Hiera-B 16x224 with the same architecture, on CUDA."""
    from hiera.hiera import Hiera as OfficialHiera
    from hiera.hiera_mae import MaskedAutoencoderHiera as OfficialMAE

    from hiera_video.models import create_model, model_architecture

    name = "mae_hiera_base_16x224" if mode == "mae" else "hiera_base_16x224"
    _, architecture = model_architecture(name)
    torch.manual_seed(0)
    official = (OfficialMAE if mode == "mae" else OfficialHiera)(**architecture)
    ours = create_model(name)
    ours.load_state_dict(official.state_dict())
    models = {"ours": ours, "official": official}
    if mode != "mae":
        from timm.models.hiera import Hiera as TimmHiera

        timm_architecture = {k: v for k, v in architecture.items() if k != "input_size"}
        models["timm"] = TimmHiera(img_size=architecture["input_size"], **timm_architecture)
    return {key: model.cuda() for key, model in models.items()}


def check_model_speed(mode: str, batch_size: int, repeats: int) -> dict:
    """Rows per (implementation, dtype) of ``mode``: seconds, clips/s, reference / ours, peak memory."""
    models = _models(mode)
    clips = torch.randn(batch_size, 3, 16, 224, 224, device="cuda")
    mask = models["ours"].get_random_mask(clips, 0.9) if mode == "mae" else None
    rows = []
    for dtype_name, dtype in DTYPES.items():
        steps = {impl: _model_step(model, mode, dtype, clips, mask) for impl, model in models.items()}
        medians = _timed_medians(steps, repeats)
        for impl, seconds in medians.items():
            rows.append({"impl": impl, "dtype": dtype_name, "seconds": seconds, "clips_per_s": batch_size / seconds,
                         "speedup_of_ours": medians[impl] / medians["ours"] if impl != "ours" else None,
                         "peak_mib": _peak_mib(steps[impl])})
    del models
    torch.cuda.empty_cache()
    return {"rows": rows}


def check_compile(batch_size: int, repeats: int) -> dict:
    """torch.compile of our classifier against eager, bf16 autocast forward."""
    from hiera_video.models import create_model

    model = create_model("hiera_base_16x224").cuda().eval()
    clips = torch.randn(batch_size, 3, 16, 224, 224, device="cuda")
    compiled = torch.compile(model)
    start = time.perf_counter()
    _model_step(compiled, "forward", torch.bfloat16, clips, None)()
    torch.cuda.synchronize()
    compile_seconds = time.perf_counter() - start
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        max_diff = (compiled(clips).float() - model(clips).float()).abs().max().item()
    medians = _timed_medians({"eager": _model_step(model, "forward", torch.bfloat16, clips, None),
                              "compiled": _model_step(compiled, "forward", torch.bfloat16, clips, None)}, repeats)
    return {"compile_seconds": compile_seconds, "eager_seconds": medians["eager"],
            "compiled_seconds": medians["compiled"], "speedup": medians["eager"] / medians["compiled"],
            "max_logit_difference": max_diff}


def _run(command: List[str], timeout: float, cwd: Optional[Path] = None) -> dict:
    """Run ``command``; raise with the tail of its output when it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {done.returncode}: {done.stderr[-2000:]}")
    return {"seconds": time.perf_counter() - start, "stdout_tail": done.stdout[-500:]}


def _engine_opts(data: Path, output: Path) -> List[str]:
    """Overrides of configs/demo/hiera_tiny.yaml for a one-epoch fp16 run on one GPU."""
    return ["--cfg", str(ROOT / "configs/demo/hiera_tiny.yaml"), "NUM_GPUS", "1", "TRAIN.MIXED_PRECISION", "fp16",
            "SOLVER.MAX_EPOCH", "1", "TRAIN.CHECKPOINT_PERIOD", "1", "TRAIN.AUTO_RESUME", "False",
            "DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data), "OUTPUT_DIR", str(output)]


def check_engine(work: Path, torchrun: bool) -> dict:
    """tools/run_net.py (or under torchrun with NCCL) on a small generated dataset: train one epoch, test."""
    data = work / "data"
    if not (data / "train.csv").exists():
        _run([sys.executable, str(ROOT / "tools/make_synthetic_dataset.py"), str(data), "--train-per-class", "4",
              "--val-per-class", "1", "--test-per-class", "2"], timeout=300)
    output = work / ("torchrun" if torchrun else "engine")
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
                if torchrun else [sys.executable])
    extra = ["DIST_BACKEND", "nccl"] if torchrun else []
    result = _run(launcher + [str(ROOT / "tools/run_net.py")] + _engine_opts(data, output) + extra, timeout=420)
    log = (output / "log.txt").read_text() if (output / "log.txt").exists() else ""
    result["fp16_in_log"] = "fp16 autocast" in log
    result["checkpoint"] = str(next(iter(sorted((output / "checkpoints").glob("*.pyth"))), ""))
    return result


def nccl_child() -> None:
    """Under torchrun: an NCCL process group, an all-reduce and one DDP training step of a tiny Hiera (the
    engine does not start a process group for a world of one, so this is what exercises NCCL)."""
    import os

    import torch.distributed as dist

    from hiera_video.models import create_model

    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl")
    value = torch.ones(1, device="cuda")
    dist.all_reduce(value)
    model = create_model("hiera_base_16x224", input_size=(8, 64, 64), embed_dim=16, stages=(1, 1, 1, 1),
                         num_classes=5).cuda()
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank])
    ddp(torch.randn(2, 3, 8, 64, 64, device="cuda")).sum().backward()
    torch.cuda.synchronize()
    print(json.dumps({"all_reduce": value.item(), "world_size": dist.get_world_size()}))
    dist.destroy_process_group()


def check_torchrun(work: Path) -> dict:
    """NCCL and DDP under torchrun, then the engine run under torchrun."""
    nccl = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                 str(Path(__file__).resolve()), "--nccl-child"], timeout=180)
    result = check_engine(work, torchrun=True)
    result["nccl"] = json.loads(nccl["stdout_tail"].strip().splitlines()[-1])
    return result


def check_predict(work: Path) -> dict:
    """tools/predict.py on CUDA with --precision auto, using the engine step's checkpoint."""
    checkpoint = next(iter(sorted((work / "engine" / "checkpoints").glob("*.pyth"))), None)
    if checkpoint is None:
        raise RuntimeError("no checkpoint from the engine step")
    video = next(iter(sorted((work / "data").rglob("*.mp4"))))
    out = work / "predict.json"
    result = _run([sys.executable, str(ROOT / "tools/predict.py"), str(video), "--checkpoint", str(checkpoint),
                   "--device", "cuda", "--precision", "auto", "--json", str(out)], timeout=300)
    result["top_1"] = json.loads(out.read_text())[0]["top_k"][0]
    return result


def check_ava(steps: int = 5) -> dict:
    """The AVA detector on CUDA: a few bf16 autocast training steps on random clips and boxes, then inference."""
    from hiera_video.models.ava_head import create_ava_detector

    torch.manual_seed(0)
    model = create_ava_detector("hiera_base_16x224", input_size=(16, 224, 224)).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clips = torch.randn(2, 3, 16, 224, 224, device="cuda")
    # boxes [K, 5] = (batch index, x1, y1, x2, y2) in input pixels; labels [K, 80] multi-hot
    boxes = torch.tensor([[0, 10, 20, 120, 200], [1, 50, 30, 200, 220], [1, 0, 0, 100, 100]],
                         dtype=torch.float32, device="cuda")
    labels = (torch.rand(3, 80, device="cuda") > 0.9).float()
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(clips, boxes).float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        scores = model(clips, boxes).float().sigmoid()
    torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - start, "losses": losses, "scores_shape": list(scores.shape),
            "finite": bool(torch.isfinite(scores).all())}


def plan(args: argparse.Namespace, work: Path) -> List[tuple]:
    """(name, what it runs, function) of every step, in order."""
    batch, repeats = args.batch_size, args.repeats
    return [
        ("forward", f"Hiera-B 16x224 batch {batch} inference, ours vs timm vs official, fp32/bf16/fp16",
         lambda: check_model_speed("forward", batch, repeats)),
        ("train", f"Hiera-B 16x224 batch {batch} forward+backward, ours vs timm vs official, fp32/bf16/fp16",
         lambda: check_model_speed("train", batch, repeats)),
        ("mae", f"MAE Hiera-B 16x224 batch {batch} forward+backward at 90% masking, ours vs official",
         lambda: check_model_speed("mae", batch, repeats)),
        ("compile", "torch.compile of our classifier, bf16 forward, against eager",
         lambda: check_compile(batch, repeats)),
        ("engine", "tools/run_net.py NUM_GPUS 1, fp16 autocast + GradScaler, train 1 epoch + multi-view test",
         lambda: check_engine(work, torchrun=False)),
        ("torchrun", "torchrun --nproc_per_node 1: NCCL all-reduce + DDP step, then tools/run_net.py",
         lambda: check_torchrun(work)),
        ("predict", "tools/predict.py --device cuda --precision auto with the engine checkpoint",
         lambda: check_predict(work)),
        ("ava", "AVA detector: bf16 autocast training steps and inference on CUDA", check_ava),
    ]


def run_steps(steps: List[tuple], skip_reason: Optional[str]) -> List[dict]:
    """Run (or, with ``skip_reason``, skip) every step; a failing step is recorded and the next one runs."""
    results = []
    for name, description, function in steps:
        record = {"step": name, "description": description}
        if skip_reason:
            record.update(status="skipped", reason=skip_reason)
        else:
            start = time.perf_counter()
            try:
                record.update(status="ok", result=function())
            except Exception as error:  # one broken path must not hide the others
                record.update(status="failed", reason=f"{type(error).__name__}: {error}"[:2000])
            record["wall_seconds"] = time.perf_counter() - start
        results.append(record)
        print(f"[{record['status']}] {name}: {record.get('reason', '')}", flush=True)
    return results


def summary_line(record: dict) -> str:
    """The table cell of one step's outcome."""
    result = record.get("result")
    if record["status"] != "ok":
        return record.get("reason", "")[:120]
    if "rows" in result:
        return "; ".join(f"{r['impl']} {r['dtype']} {r['clips_per_s']:.1f} clips/s {r['peak_mib']:.0f} MiB"
                         for r in result["rows"])
    keys = [key for key in result if key not in ("stdout_tail", "losses")]
    return ", ".join(f"{key} {result[key]:.3g}" if isinstance(result[key], float) else f"{key} {result[key]}"
                     for key in keys)


def main(argv=None) -> int:
    """Parse arguments, run the steps, print the table and the JSON; 1 when a step failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="list the steps, run none")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--nccl-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.nccl_child:
        nccl_child()
        return 0
    skip_reason = "--dry-run" if args.dry_run else (None if torch.cuda.is_available() else "no CUDA device")
    device = torch.cuda.get_device_name(0) if skip_reason is None else "none"
    print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, device {device}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
        results = run_steps(plan(args, Path(work)), skip_reason)
    print("\n| step | status | seconds | outcome |\n|---|---|---|---|")
    for record in results:
        seconds = f"{record['wall_seconds']:.1f}" if "wall_seconds" in record else ""
        print(f"| {record['step']} | {record['status']} | {seconds} | {summary_line(record)} |")
    report = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device, "steps": results}
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 1 if any(record["status"] == "failed" for record in results) else 0


if __name__ == "__main__":
    sys.exit(main())
