"""Evaluation-loop speed: 5 x 3-view testing end to end, ours against a PySlowFast-style loop, as ratios.

    python benchmarks/eval_speed.py [--cfg configs/demo/hiera_tiny.yaml] [--num-videos 8] [--seconds 10]
                                    [--width 320] [--height 240] [--workers 2] [--rounds 3] [--threads 0]
                                    [--save]

Encodes Kinetics-like videos (H.264, 30 fps, moving noisy content) and a ``val.csv`` into a temporary
folder, builds the config's model (default: the demo's tiny Hiera, random weights) and times, in this
one process and in interleaved rounds (every configuration once per round, medians reported):

- ours, end to end: the engine's real test path, ``build_test_loader`` + ``evaluate_views`` (every video
  decoded once for its 15 views, views of several videos batched into one forward pass);
- reference, end to end: PySlowFast's test loop, written here with our decoder and transforms: every
  view is a dataset item that opens the video and decodes its own clip at full size, batches of
  ``TEST.BATCH_SIZE`` views, scores copied to the CPU and summed per video after every batch;
- ours again with the model on torch's default thread count (all cores) beside the decoding workers,
  which the engine avoids on CPU (``leave_cores_to_loader_workers``);
- the time split: each loader alone (decode + transforms + worker transfer, no model) and the model
  alone (forward passes over views decoded beforehand), so a reader sees where the time goes.

Both loops use the same DataLoader settings (``DATA_LOADER.NUM_WORKERS`` from ``--workers``), the same
model and the same torch thread count (the engine's choice, unless ``--threads``). ``--save`` records the
rows in ``benchmarks/results.json`` for ``plot.py``.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_speed import kinetics_like_frames  # noqa: E402
from plot import save_results  # noqa: E402

from hiera_video.config import load_config  # noqa: E402
from hiera_video.datasets.decoding import open_video  # noqa: E402
from hiera_video.datasets.sampling import uniform_clip_indices  # noqa: E402
from hiera_video.datasets.synthetic import write_video  # noqa: E402
from hiera_video.datasets.transforms import spatial_views  # noqa: E402
from hiera_video.engine.data import (  # noqa: E402
    build_test_loader,
    leave_cores_to_loader_workers,
    per_process_test_clips,
)
from hiera_video.engine.distributed import DistributedContext  # noqa: E402
from hiera_video.engine.tasks import get_task  # noqa: E402
from hiera_video.engine.tasks.classification import evaluate_views  # noqa: E402
from hiera_video.engine.view_scorer import ViewScorer  # noqa: E402


class PerViewDataset(torch.utils.data.Dataset):
    """PySlowFast's test dataset: item ``i`` is view ``i % V`` of video ``i // V``, decoded on its own.

    As in PySlowFast, every view opens the video, decodes its clip at full resolution (seeking from the
    keyframe before it) and then resizes and crops; returns ``(view [C, T, h, w], label, video index)``.
    """

    def __init__(self, cfg, paths: list[str], labels: list[int]):
        self.cfg, self.paths, self.labels = cfg, paths, labels
        self.num_views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS

    def __len__(self) -> int:
        return len(self.paths) * self.num_views

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int, int]:
        data, test = self.cfg.DATA, self.cfg.TEST
        video_index, view = divmod(item, self.num_views)
        with open_video(self.paths[video_index], data.DECODING_BACKEND, timeout=data.DECODE_TIMEOUT or None) as video:
            clips = uniform_clip_indices(video.num_frames, video.fps, data.NUM_FRAMES, data.SAMPLING_RATE,
                                         data.TARGET_FPS, test.NUM_ENSEMBLE_VIEWS, data.USE_OFFSET_SAMPLING)
            frames = video.get_frames(clips[view // test.NUM_SPATIAL_CROPS].tolist())
        crops = spatial_views(frames, data.TEST_CROP_SIZE, test.NUM_SPATIAL_CROPS, data.TRAIN_JITTER_SCALES[0],
                              data.MEAN, data.STD)
        return crops[view % test.NUM_SPATIAL_CROPS], self.labels[video_index], video_index


def per_view_loader(cfg, paths: list[str], labels: list[int]) -> torch.utils.data.DataLoader:
    """The reference's loader: batches of TEST.BATCH_SIZE views, same workers as ours."""
    return torch.utils.data.DataLoader(PerViewDataset(cfg, paths, labels), batch_size=cfg.TEST.BATCH_SIZE,
                                       num_workers=cfg.DATA_LOADER.NUM_WORKERS, shuffle=False)


@torch.no_grad()
def per_view_evaluate(model: torch.nn.Module, loader: torch.utils.data.DataLoader, num_classes: int) -> torch.Tensor:
    """PySlowFast's ``test_net`` loop: forward every batch of views, copy the softmax to the CPU, add it
    to its video's row. Returns summed scores [num_videos, num_classes]."""
    model.eval()
    scores = torch.zeros(len(loader.dataset.paths), num_classes)
    for views, _labels, video_index in loader:
        probabilities = model(views).softmax(dim=-1).cpu()
        scores.index_add_(0, video_index, probabilities)
    return scores


def write_videos(folder: Path, num_videos: int, seconds: float, height: int, width: int) -> list[str]:
    """Kinetics-like H.264 videos and a ``val.csv`` listing them (label = video index % 8)."""
    paths = []
    for i in range(num_videos):
        frames = kinetics_like_frames(int(seconds * 30), height, width, seed=i)
        paths.append(write_video(folder / f"video{i}.mp4", frames))
    (folder / "val.csv").write_text("".join(f"{path} {i % 8}\n" for i, path in enumerate(paths)))
    return paths


def benchmark_config(cfg_file: str, data_dir: Path, workers: int, batch_size: int):
    """The model config with the generated list, 5 x 3 views, ``workers`` loader workers."""
    opts = ["DATA.PATH_TO_DATA_DIR", str(data_dir), "DATA.PATH_PREFIX", "", "TEST.NUM_ENSEMBLE_VIEWS", "5",
            "TEST.NUM_SPATIAL_CROPS", "3", "DATA_LOADER.NUM_WORKERS", str(workers), "NUM_GPUS", "0"]
    if batch_size:
        opts += ["TEST.BATCH_SIZE", str(batch_size)]
    return load_config(cfg_file, opts)


def collect_views(loader: torch.utils.data.DataLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every test batch's views [B, V, C, T, H, W] and video indices [B], decoded once, for timing the
    model alone."""
    return [(batch.views, batch.index) for batch in loader]


def build_cases(cfg, model: torch.nn.Module, ctx: DistributedContext, paths: list[str],
                default_threads: int) -> list[tuple]:
    """(group, configuration, function, plotted) for every measured configuration; each handles every video once.
    ``default_threads``: torch's own thread count, for the row that shows what the engine's choice saves."""
    labels = [i % 8 for i in range(len(paths))]
    decoded = collect_views(build_test_loader(cfg, ctx, "val"))
    clips_per_pass = per_process_test_clips(cfg, ctx.world_size)
    num_classes = cfg.MODEL.NUM_CLASSES

    def ours_end_to_end():
        evaluate_views(cfg, model, build_test_loader(cfg, ctx, "val"), ctx)

    def ours_on_all_cores():
        chosen = torch.get_num_threads()
        torch.set_num_threads(default_threads)
        try:
            ours_end_to_end()
        finally:
            torch.set_num_threads(chosen)

    def ours_loader_only():
        for _batch in build_test_loader(cfg, ctx, "val"):
            pass

    def model_only():
        scorer = ViewScorer(model, clips_per_pass, "", ctx.device, num_videos=len(paths))
        for views, indices in decoded:
            scorer.add(views, indices)
        scorer.finish()

    def reference_end_to_end():
        per_view_evaluate(model, per_view_loader(cfg, paths, labels), num_classes)

    def reference_loader_only():
        for _batch in per_view_loader(cfg, paths, labels):
            pass

    # (group, configuration, function, whether the plot shows its ratio as a speed-up)
    return [
        ("end to end", "PySlowFast-style: decode per view", reference_end_to_end, False),
        ("end to end", "ours: decode once, full passes of views (engine tester)", ours_end_to_end, True),
        ("end to end", f"ours, model on torch's default {default_threads} threads beside the workers",
         ours_on_all_cores, False),
        ("time split", "reference loader alone (decode per view, no model)", reference_loader_only, False),
        ("time split", "our loader alone (decode once, no model)", ours_loader_only, True),
        ("time split", "model alone (15 views x videos, decoded beforehand)", model_only, False),
    ]


def median_times(cases: list[tuple], rounds: int) -> list[float]:
    """Median wall time of each case over ``rounds``; every round runs every case once, in turn."""
    times = [[] for _ in cases]
    for _ in range(rounds):
        for position, (_group, _name, function, _plotted) in enumerate(cases):
            start = time.perf_counter()
            function()
            times[position].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    """Encode the videos, time every configuration, print the table (and save it with --save)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default=str(Path(__file__).resolve().parents[1] / "configs/demo/hiera_tiny.yaml"))
    parser.add_argument("--num-videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--workers", type=int, default=2, help="DATA_LOADER.NUM_WORKERS for both loops")
    parser.add_argument("--batch-size", type=int, default=0, help="TEST.BATCH_SIZE (0: the config's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads of this process (0: the engine's choice beside the workers)")
    parser.add_argument("--save", action="store_true", help="record the rows in benchmarks/results.json")
    args = parser.parse_args()
    ctx = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_videos(Path(folder), args.num_videos, args.seconds, args.height, args.width)
        cfg = benchmark_config(args.cfg, Path(folder), args.workers, args.batch_size)
        if args.threads:
            torch.set_num_threads(args.threads)
        else:
            leave_cores_to_loader_workers(cfg, ctx.device)  # as the engine's run() does
        model = get_task(cfg).build_model().eval()
        cases = build_cases(cfg, model, ctx, paths, default_threads)
        times = median_times(cases, args.rounds)
    data = cfg.DATA
    print(f"{len(paths)} videos, {args.seconds:g} s, {args.width}x{args.height}, H.264 30 fps; model "
          f"{Path(args.cfg).name} ({data.NUM_FRAMES}x{data.TEST_CROP_SIZE}, random weights); 5 x 3 views; "
          f"TEST.BATCH_SIZE {cfg.TEST.BATCH_SIZE}; {args.workers} loader workers; torch threads "
          f"{torch.get_num_threads()}; median of {args.rounds} interleaved rounds\n")
    print("| measurement | configuration | seconds | videos/s | ratio |")
    print("|---|---|---|---|---|")
    rows, group_reference = [], {}
    for (group, name, _function, plotted), seconds in zip(cases, times):
        reference = group_reference.setdefault(group, seconds)
        row = {"group": group, "name": name, "seconds": seconds, "rate": len(paths) / seconds,
               "ratio": reference / seconds}
        if plotted:
            row["speedup"] = row["ratio"]
        rows.append(row)
        print(f"| {group} | {name} | {seconds:.2f} | {row['rate']:.2f} | {row['ratio']:.2f}x |")
    ours = times[1]
    print(f"\nOf our end-to-end time: loader alone {times[4] / ours:.0%}, model alone {times[5] / ours:.0%} "
          "(above 100 % together means decoding and the model overlap).")
    if args.save:
        save_results("eval", rows, unit="videos/s",
                     note="ratio: against the first row of the group (PySlowFast-style loop / its loader)")


if __name__ == "__main__":
    main()
