"""Where the time goes: torch.profiler on the evaluation loop or on training iterations of a tiny Hiera (CPU).

    python benchmarks/profile_loops.py --loop eval  [--workers 0] [--num-videos 2] [--rows 12]
    python benchmarks/profile_loops.py --loop train [--workers 0] [--iterations 3]

Encodes Kinetics-like videos (as ``eval_speed.py``: 320x240, 10 s, H.264 30 fps), builds the config's model
(default: the demo's tiny Hiera) and profiles

- ``eval``: the engine's test path (``build_test_loader`` + ``evaluate_views``, 5 x 3 views);
- ``train``: ``--iterations`` training iterations (the classification task's ``training_step``, backward,
  AdamW step) on batches from the engine's training loader, after one warm-up iteration.

With ``--workers 0`` (default) decoding runs in this process, so the profiler sees it; the time spent
waiting for each batch is labelled ``loader: next batch``. Prints the operators with the most self CPU
time and the share of the labelled phases. For the loader workers' own Python stacks (decoding, cropping,
collation, sending the batch) use py-spy, which samples subprocesses too::

    py-spy record --subprocesses --format raw -o /tmp/eval.txt -- \\
        python benchmarks/profile_loops.py --loop eval --workers 2 --no-profiler
    python benchmarks/profile_loops.py --summarize-py-spy /tmp/eval.txt   # the loop's stacks only
"""
import argparse
import collections
import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_speed import write_videos  # noqa: E402

from hiera_video.config import load_config  # noqa: E402
from hiera_video.engine.data import (  # noqa: E402
    build_test_loader,
    build_train_loader,
    leave_cores_to_loader_workers,
)
from hiera_video.engine.distributed import DistributedContext  # noqa: E402
from hiera_video.engine.optim import build_optimizer  # noqa: E402
from hiera_video.engine.tasks import get_task  # noqa: E402
from hiera_video.engine.tasks.classification import evaluate_views  # noqa: E402

PHASES = ("loader: next batch", "training: forward + loss", "training: backward", "training: optimizer step")


class LabelledLoader:
    """A DataLoader whose every ``next`` runs under ``record_function("loader: next batch")``."""

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader, self.dataset = loader, loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            with record_function(PHASES[0]):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch


def profile_config(cfg_file: str, data_dir: Path, workers: int):
    """The model config reading the generated list in ``data_dir`` for both splits."""
    opts = ["DATA.PATH_TO_DATA_DIR", str(data_dir), "DATA.PATH_PREFIX", "", "DATA_LOADER.NUM_WORKERS", str(workers),
            "NUM_GPUS", "0", "TEST.NUM_ENSEMBLE_VIEWS", "5", "TEST.NUM_SPATIAL_CROPS", "3", "TRAIN.BATCH_SIZE", "4"]
    return load_config(cfg_file, opts)


def run_eval(cfg, ctx: DistributedContext) -> None:
    """The engine's multi-view test of the ``val`` list."""
    model = get_task(cfg).build_model()
    evaluate_views(cfg, model, LabelledLoader(build_test_loader(cfg, ctx, "val")), ctx)


def train_iterations(cfg, ctx: DistributedContext, iterations: int):
    """A generator of training iterations: each ``next`` runs one; the first is a warm-up."""
    task = get_task(cfg)
    model = task.build_model().train()
    optimizer = build_optimizer(model, cfg)
    for batch in LabelledLoader(build_train_loader(cfg, ctx)):
        with record_function(PHASES[1]):
            loss = task.training_step(model, batch, ctx.device).loss
        with record_function(PHASES[2]):
            loss.backward()
        with record_function(PHASES[3]):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        yield


def print_profile(prof, rows: int) -> None:
    """Top operators by self CPU time, then the labelled phases' share of the profiled wall time."""
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=rows))
    total = sum(event.self_cpu_time_total for event in averages)
    for event in averages:
        if event.key in PHASES:
            print(f"{event.key}: {event.cpu_time_total / 1e6:.2f} s ({event.cpu_time_total / total:.0%} of "
                  f"{total / 1e6:.2f} s CPU time in this process)")


def summarize_py_spy(path: Path, rows: int, keep: tuple[str, ...] = ()) -> None:
    """Self time per function, and total time per ``hiera_video`` function, from a ``py-spy record
    --format raw`` file (collapsed stacks; with ``--subprocesses`` the workers' samples are included).
    ``keep``: only stacks with a frame containing one of these strings (e.g. the loop, not the setup)."""
    self_samples: collections.Counter = collections.Counter()
    total_samples: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        if keep and not any(word in frame for frame in frames for word in keep):
            continue
        total += int(count)
        self_samples[frames[-1]] += int(count)
        for frame in set(frames):
            if "hiera_video" in frame:
                total_samples[frame] += int(count)
    print(f"{total} samples; functions with the most self time:")
    for frame, count in self_samples.most_common(rows):
        print(f"{count / total:6.1%}  {frame}")
    print("hiera_video functions with the most total time (callees included):")
    for frame, count in total_samples.most_common(rows):
        print(f"{count / total:6.1%}  {frame}")


def main() -> None:
    """Parse arguments, generate the videos, run the chosen loop under the profiler."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("eval", "train"), default="eval")
    parser.add_argument("--cfg", default=str(Path(__file__).resolve().parents[1] / "configs/demo/hiera_tiny.yaml"))
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--num-videos", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=3, help="profiled training iterations")
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--no-profiler", action="store_true", help="run the loop only (for py-spy)")
    parser.add_argument("--summarize-py-spy", type=Path, help="summarize a py-spy raw file and exit")
    parser.add_argument("--stacks-with", nargs="*", default=["evaluate_views", "_worker_loop", "serve_stdio"],
                        help="summarize only stacks with a frame containing one of these (default: the test loop, "
                             "loader workers and decode helpers, not the video generation)")
    args = parser.parse_args()
    if args.summarize_py_spy:
        summarize_py_spy(args.summarize_py_spy, args.rows, tuple(args.stacks_with))
        return
    ctx = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    with tempfile.TemporaryDirectory() as folder:
        num_videos = max(args.num_videos, 4 * (args.iterations + 1)) if args.loop == "train" else args.num_videos
        write_videos(Path(folder), num_videos, args.seconds, 240, 320)
        (Path(folder) / "train.csv").write_text((Path(folder) / "val.csv").read_text())
        cfg = profile_config(args.cfg, Path(folder), args.workers)
        leave_cores_to_loader_workers(cfg, ctx.device)  # as the engine's run() does
        if args.loop == "train":
            iterations = train_iterations(cfg, ctx, args.iterations)
            next(iterations)  # warm-up, outside the profile
            run = lambda: [next(iterations) for _ in range(args.iterations)]  # noqa: E731
        else:
            run = lambda: run_eval(cfg, ctx)  # noqa: E731
        if args.no_profiler:
            run()
            return
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
    print_profile(prof, args.rows)


if __name__ == "__main__":
    main()
