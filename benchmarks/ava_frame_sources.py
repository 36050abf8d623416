"""AVA clip reading: trimmed video (seek per keyframe) against extracted JPEG frames, as ratios.

    python benchmarks/ava_frame_sources.py [--seconds 120] [--width 400] [--height 300] [--clips 40] [--repeats 3]

Encodes one AVA-like trimmed video (H.264, 30 fps, keyframe every 2 s as YouTube-style encodes use),
extracts its frames as JPEGs (what PySlowFast reads), then reads the same 16 x 4 clips around random
keyframes from both sources in this one process (after a warm-up, alternating, median of the repeats),
checking they hold the same frames. The video is opened for every clip, as in the main process (DataLoader
workers keep it open, which is faster). Prints clips per second, the ratio against the JPEG source, and
the disk each source needs.
"""
import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.datasets.ava import (  # noqa: E402
    ExtractedFrames, TrimmedVideos, clip_frame_indices, keyframe_index, write_frame_list,
)
from hiera_video.datasets.ava_preparation import extract_frames  # noqa: E402
from hiera_video.datasets.synthetic import write_video  # noqa: E402


def movie_like_frames(num_frames: int, height: int, width: int) -> torch.Tensor:
    """uint8 [T, H, W, 3]: drifting colour waves plus noise, so H.264 has real work to do."""
    generator = torch.Generator().manual_seed(0)
    ys = torch.linspace(0, 6.28, height).view(1, height, 1)
    xs = torch.linspace(0, 6.28, width).view(1, 1, width)
    t = torch.arange(num_frames, dtype=torch.float32).view(num_frames, 1, 1) / 20
    channels = [torch.sin(xs * (k + 1) + ys + t * (k + 1)) for k in range(3)]
    frames = torch.stack(channels, dim=-1) * 100 + 128
    frames += torch.randint(-12, 13, frames.shape, generator=generator)
    return frames.clamp(0, 255).to(torch.uint8)


def time_source(source, video_id: str, grids: list[list[int]]) -> tuple[float, list[torch.Tensor]]:
    """Seconds per clip over ``grids`` and the clips read."""
    start = time.perf_counter()
    clips = [source.read(video_id, grid) for grid in grids]
    return (time.perf_counter() - start) / len(grids), clips


def folder_size(path: str) -> int:
    """Bytes of the files under ``path``."""
    return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())


def main() -> None:
    """Encode, extract, read the same clips from both sources and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--height", type=int, default=300)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    random.seed(0)
    with tempfile.TemporaryDirectory() as root:
        videos, frames = os.path.join(root, "videos"), os.path.join(root, "frames")
        os.makedirs(videos)
        write_video(os.path.join(videos, "movie.mp4"), movie_like_frames(args.seconds * 30, args.height, args.width),
                    fps=30, options={"g": "60", "crf": "23"})
        extract_frames(os.path.join(videos, "movie.mp4"), os.path.join(frames, "movie"), "movie")
        write_frame_list(frames, ["movie"], os.path.join(root, "list.csv"))
        seconds = range(902, 900 + args.seconds - 1)
        grids = [clip_frame_indices(keyframe_index(random.choice(seconds)), 16, 4, 1 << 30) for _ in range(args.clips)]

        jpeg_source = ExtractedFrames(os.path.join(root, "list.csv"), frames)
        video_source = TrimmedVideos(videos)
        for source in (jpeg_source, video_source):  # warm-up: library initialization, page cache
            time_source(source, "movie", grids[:2])
        jpeg_times, video_times = [], []
        for _repeat in range(args.repeats):  # alternate, so machine load affects both alike
            jpeg_time, jpeg_clips = time_source(jpeg_source, "movie", grids)
            video_time, video_clips = time_source(video_source, "movie", grids)
            jpeg_times.append(jpeg_time)
            video_times.append(video_time)
        jpeg_time, video_time = sorted(jpeg_times)[len(jpeg_times) // 2], sorted(video_times)[len(video_times) // 2]
        difference = max((a.float() - b.float()).abs().mean().item() for a, b in zip(jpeg_clips, video_clips))
        print(f"{args.clips} clips of 16 frames at stride 4, {args.width}x{args.height}, {args.seconds} s video")
        print("| source | clips/s | speed vs JPEG frames | disk |")
        print("|---|---|---|---|")
        print(f"| extracted JPEG frames | {1 / jpeg_time:.2f} | 1.00x | {folder_size(os.path.join(frames, 'movie')) / 1e6:.1f} MB |")
        print(f"| trimmed video, seek per clip | {1 / video_time:.2f} | {jpeg_time / video_time:.2f}x "
              f"| {folder_size(videos) / 1e6:.1f} MB |")
        print(f"largest mean absolute pixel difference between the sources' clips: {difference:.2f} / 255")


if __name__ == "__main__":
    main()
