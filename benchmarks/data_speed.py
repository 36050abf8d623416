"""Data-pipeline speed: training clips per second and 5 x 3 test videos per second, as ratios.

    python benchmarks/data_speed.py [--num-videos 4] [--seconds 10] [--width 340] [--height 256] [--repeats 3]
                                    [--workers 1 2] [--save]

Encodes Kinetics-like videos (H.264, 30 fps, 340x256, moving noisy content) into a temporary folder,
then times, in this one process, in interleaved rounds (every configuration once per round):

- training sampling (Hiera 16 x 4 clip, random resized crop 224, flip, normalize) with PyAV and decord,
  with and without the decode watchdog subprocess;
- 5 x 3 multi-view testing (short side 224, three 224 crops of five clips): decode once per video (ours)
  against decode once per view (PySlowFast / VideoMAE: 15 decodes per video), with PyAV and decord;
- training clips through a DataLoader with each of ``--workers`` worker counts (PyAV and decord).

Prints a Markdown table: rates and ratios against the first row of each group. Wall-clock numbers depend
on the machine and its load; the ratios are what carries over. ``--save`` records the rows in
``benchmarks/results.json`` for ``plot.py``.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.config.defaults import get_cfg  # noqa: E402
from hiera_video.datasets.clip_dataset import VideoClipDataset  # noqa: E402
from hiera_video.datasets.decoding import available_backends, open_video  # noqa: E402
from hiera_video.datasets.list_files import VideoEntry  # noqa: E402
from hiera_video.datasets.sampling import uniform_clip_indices  # noqa: E402
from hiera_video.datasets.synthetic import write_video  # noqa: E402
from hiera_video.datasets.transforms import spatial_views  # noqa: E402


def kinetics_like_frames(num_frames: int, height: int, width: int, seed: int) -> torch.Tensor:
    """uint8 [T, H, W, 3]: a drifting colour pattern plus noise, so H.264 has real work to do."""
    generator = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 6.28, height).view(1, height, 1)
    xs = torch.linspace(0, 6.28, width).view(1, 1, width)
    t = torch.arange(num_frames, dtype=torch.float32).view(num_frames, 1, 1) / 15
    channels = [torch.sin(xs * (c + 1) + t * (c + 1)) * torch.cos(ys * (2 - c) - t) for c in range(3)]
    frames = torch.stack(channels, dim=-1) * 100 + 128  # [T, H, W, 3]
    frames += torch.randn(frames.shape, generator=generator) * 12
    return frames.clamp(0, 255).to(torch.uint8)


def benchmark_cfg(backend: str, timeout: float) -> object:
    """Hiera video recipe: 16 x 4 clips at 30 fps, 224 crops, 5 x 3 test views."""
    cfg = get_cfg()
    cfg.DATA.DECODING_BACKEND, cfg.DATA.DECODE_TIMEOUT = backend, timeout
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 5, 3
    return cfg


def decode_per_view(cfg, path: str) -> torch.Tensor:
    """PySlowFast-style testing: every one of the 15 views opens the video and decodes its clip."""
    data, test = cfg.DATA, cfg.TEST
    views = []
    for view in range(test.NUM_ENSEMBLE_VIEWS * test.NUM_SPATIAL_CROPS):
        with open_video(path, data.DECODING_BACKEND) as video:
            clips = uniform_clip_indices(video.num_frames, video.fps, data.NUM_FRAMES, data.SAMPLING_RATE,
                                         data.TARGET_FPS, test.NUM_ENSEMBLE_VIEWS, data.USE_OFFSET_SAMPLING)
            frames = video.get_frames(clips[view // test.NUM_SPATIAL_CROPS].tolist())
        crops = spatial_views(frames, data.TEST_CROP_SIZE, test.NUM_SPATIAL_CROPS, data.TRAIN_JITTER_SCALES[0],
                              data.MEAN, data.STD)
        views.append(crops[view % test.NUM_SPATIAL_CROPS])
    return torch.stack(views)


def best_times(cases: list[tuple], repeats: int) -> list[float]:
    """Best wall time of each case's ``function()`` over ``repeats`` rounds; every round runs every case
    once, in turn, so a change of machine load hits all cases alike."""
    best = [float("inf")] * len(cases)
    for _ in range(repeats):
        for position, (_group, _name, function, _unit) in enumerate(cases):
            start = time.perf_counter()
            function()
            best[position] = min(best[position], time.perf_counter() - start)
    return best


def loader_cases(entries: list[VideoEntry], backends: list[str], worker_counts: list[int]) -> list[tuple]:
    """Training clips through a DataLoader with N workers (persistent, started outside the timing; the
    watchdog is on, as by default), batches of 2 clips."""
    cases = []
    for backend in backends:
        for workers in worker_counts:
            dataset = VideoClipDataset(benchmark_cfg(backend, 60.0), entries, ["x"], "train")
            loader = DataLoader(dataset, batch_size=2, num_workers=workers, persistent_workers=True,
                                collate_fn=dataset.collate_fn)
            list(loader)  # start the workers and their watchdog processes
            cases.append(("training clips, DataLoader", f"{backend}, {workers} worker{'s' * (workers > 1)}",
                          lambda loader=loader: list(loader), "clips/s"))
    return cases


def build_cases(entries: list[VideoEntry], backends: list[str]) -> list[tuple]:
    """(group, configuration, function, unit) for every measured configuration; each function handles
    every video once."""
    paths = [entry.path for entry in entries]
    cases = []
    for backend, timeout in [(b, 0.0) for b in backends] + [("pyav", 60.0)]:
        dataset = VideoClipDataset(benchmark_cfg(backend, timeout), entries, ["x"], "train")
        dataset[0]  # start the watchdog process outside the timing
        name = backend + (" + decode watchdog process" if timeout else "")
        cases.append(("training clip (16x4, RRC 224)", name,
                      lambda dataset=dataset: [dataset[i] for i in range(len(dataset))], "clips/s"))
    for backend in backends:
        cfg = benchmark_cfg(backend, 0.0)
        once = VideoClipDataset(cfg, entries, ["x"], "test")
        per_clip = VideoClipDataset(cfg, entries, ["x"], "test", decode_once=False)
        cases += [
            ("5x3 test views", f"{backend}, decode per view (PySlowFast / VideoMAE)",
             lambda cfg=cfg: [decode_per_view(cfg, path) for path in paths], "videos/s"),
            ("5x3 test views", f"{backend}, decode per temporal clip",
             lambda per_clip=per_clip: [per_clip[i] for i in range(len(per_clip))], "videos/s"),
            ("5x3 test views", f"{backend}, decode once (ours)",
             lambda once=once: [once[i] for i in range(len(once))], "videos/s"),
        ]
    return cases


def main() -> None:
    """Encode the videos, time every configuration, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                        help="DataLoader worker counts for the training-loader rows (none: skip them)")
    parser.add_argument("--save", action="store_true", help="record the rows in benchmarks/results.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    backends = [b for b in ("pyav", "decord") if b in available_backends()]
    with tempfile.TemporaryDirectory() as folder:
        entries = []
        for i in range(args.num_videos):
            frames = kinetics_like_frames(int(args.seconds * 30), args.height, args.width, seed=i)
            entries.append(VideoEntry(write_video(Path(folder) / f"video{i}.mp4", frames), 0))
        cases = build_cases(entries, backends) + loader_cases(entries, backends, args.workers)
        times = best_times(cases, args.repeats)
    print(f"{len(entries)} videos, {args.seconds:g} s, {args.width}x{args.height}, H.264 30 fps; "
          f"torch threads 1; best of {args.repeats} interleaved rounds\n")
    print("| measurement | configuration | rate | ratio |")
    print("|---|---|---|---|")
    reference, rows = {}, []
    for (group, name, _function, unit), seconds in zip(cases, times):
        value = len(entries) / seconds
        reference.setdefault(group, value)
        rows.append({"group": group, "name": name, "rate": value, "unit": unit, "ratio": value / reference[group]})
        if "decode once" in name:
            rows[-1]["speedup"] = rows[-1]["ratio"]
        print(f"| {group} | {name} | {value:.2f} {unit} | {value / reference[group]:.2f}x |")
    if args.save:
        from plot import save_results

        save_results("data", rows, unit="clips/s or videos/s",
                     note="ratio and speedup: against the first row of the group "
                          "(PyAV, decode per view, for test views)")


if __name__ == "__main__":
    main()
