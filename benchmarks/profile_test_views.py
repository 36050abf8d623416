"""Where a test video's time goes in the loader, at the real input size (5 x 3 views of 16 x 224).

    python benchmarks/profile_test_views.py [--num-videos 2] [--rounds 3]

Encodes Kinetics-like videos (340x256, 10 s, H.264 30 fps) and times, per video, in one process with one
torch thread and in interleaved rounds (medians):

- decode: the 80 frames of the five 16 x 4 clips, scaled to short side 224 while decoding (PyAV);
- views: the 15 normalized 224 crops ``[15, 3, 16, 224, 224]`` as the dataset builds them now (each uint8
  crop converted into its slot of one preallocated tensor and normalized there);
- views, previous way (kept here as the reference): normalize each resized clip, stack its three float
  crops, concatenate the five clips;
- batch of one video: ``collate_test_batch`` now (no copy) and the previous ``torch.stack`` (a copy).

The worker then sends the batch to the main process through shared memory (one more copy, not timed
here). Prints seconds per video and the ratio of each previous step to the current one.
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

from data_speed import benchmark_cfg, kinetics_like_frames  # noqa: E402

from hiera_video.datasets.clip_dataset import VideoClipDataset, collate_test_batch  # noqa: E402
from hiera_video.datasets.list_files import VideoEntry  # noqa: E402
from hiera_video.datasets.synthetic import write_video  # noqa: E402
from hiera_video.datasets.transforms import (  # noqa: E402
    normalize,
    resize_short_side,
    spatial_crop,
    to_tchw,
)


def previous_views(frames: torch.Tensor, crop_size: int, mean, std) -> torch.Tensor:
    """The earlier test transform: per clip normalize the resized frames, stack float crops; then concatenate."""
    views = []
    for clip in frames:  # [T, H, W, C]
        normalized = normalize(resize_short_side(to_tchw(clip), crop_size), mean, std)  # [T, C, H, W]
        views.append(torch.stack([spatial_crop(normalized, crop_size, i).transpose(0, 1) for i in range(3)]))
    return torch.cat(views)  # 5 x [3, C, T, h, w] -> [15, C, T, h, w]


def main() -> None:
    """Encode the videos, time each step per video, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = benchmark_cfg("pyav", 0.0)
    data = cfg.DATA
    steps = ["decode (80 frames, short side 224)", "views (now)", "views (previous)", "batch of one (now)",
             "batch of one (previous: stack)"]
    times: dict[str, list[float]] = {step: [] for step in steps}
    with tempfile.TemporaryDirectory() as folder:
        entries = [VideoEntry(write_video(Path(folder) / f"video{i}.mp4", kinetics_like_frames(300, 256, 340, i)), 0)
                   for i in range(args.num_videos)]
        dataset = VideoClipDataset(cfg, entries, ["x"], "test")
        pipeline = dataset.test_views
        for _ in range(args.rounds):
            for entry in entries:
                start = time.perf_counter()
                with dataset.open(entry) as video:
                    frames = pipeline.read_frames(video, pipeline.frame_indices(video))
                times[steps[0]].append(time.perf_counter() - start)
                start = time.perf_counter()
                views = pipeline.views(frames)
                times[steps[1]].append(time.perf_counter() - start)
                start = time.perf_counter()
                reference = previous_views(frames, data.TEST_CROP_SIZE, data.MEAN, data.STD)
                times[steps[2]].append(time.perf_counter() - start)
                start = time.perf_counter()
                collate_test_batch([{"views": views, "label": 0, "index": 0}])
                times[steps[3]].append(time.perf_counter() - start)
                start = time.perf_counter()
                torch.stack([reference])
                times[steps[4]].append(time.perf_counter() - start)
    medians = {step: statistics.median(values) for step, values in times.items()}
    print(f"{args.num_videos} videos 340x256 10 s; 5 x 3 views of 16 x 224; 1 torch thread; medians of "
          f"{args.rounds} interleaved rounds\n")
    print("| step | s per video | previous / now |")
    print("|---|---|---|")
    print(f"| {steps[0]} | {medians[steps[0]]:.3f} | |")
    print(f"| {steps[1]} | {medians[steps[1]]:.3f} | |")
    print(f"| {steps[2]} | {medians[steps[2]]:.3f} | {medians[steps[2]] / medians[steps[1]]:.1f}x |")
    print(f"| {steps[3]} | {medians[steps[3]]:.3f} | (no copy) |")
    print(f"| {steps[4]} | {medians[steps[4]]:.3f} | |")
    saved = medians[steps[2]] + medians[steps[4]] - medians[steps[1]] - medians[steps[3]]
    previous_total = medians[steps[0]] + medians[steps[2]] + medians[steps[4]]
    print(f"\nSaved per video: {saved:.3f} s of {previous_total:.3f} s (decode + views + batch), "
          f"{previous_total / (previous_total - saved):.2f}x for these steps.")


if __name__ == "__main__":
    main()
