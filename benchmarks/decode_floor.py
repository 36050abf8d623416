"""The training loader against the decoder's floor, before and after re-encoding, as ratios.

    python benchmarks/decode_floor.py [--num-videos 3] [--seconds 10] [--width 640] [--height 360]
                                      [--clips 6] [--repeats 3]

Encodes Kinetics-like videos (H.264 at x264's default keyframe interval of 250 frames, 30 fps) into a
temporary folder, re-encodes copies with ``hiera_video.datasets.reencode`` (short side 320; keyframe
intervals 250 and 30), then times, in this one process, in interleaved rounds, the same random 16 x 4
training clips (positions drawn once with a fixed seed) on every copy:

- floor: PyAV decoding exactly the frames the clip needs and nothing else (seek to the keyframe before its
  first frame, decode up to its last, convert the 16 it needs to RGB), PyAV's default (slice) threading;
- our reader: ``open_video(path).get_frames(clip)`` (opens, indexes the packets, seeks, decodes), with slice
  threading (``threads=1``, what training uses) and frame threading (``threads=0``, what testing uses),
  and decoding at a reduced size (short side 320) on the originals;
- a training item: decode plus the Hiera augmentation (random resized crop 224, flip, normalize);
- the training DataLoader with one worker process (one core), random clip positions, with the decode
  watchdog subprocess (the default) and without it.

Prints a Markdown table: ms per clip, and each row's rate relative to the floor on the same files.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from data_speed import benchmark_cfg, kinetics_like_frames  # noqa: E402
from hiera_video.datasets.clip_dataset import VideoClipDataset  # noqa: E402
from hiera_video.datasets.decoding import open_video  # noqa: E402
from hiera_video.datasets.list_files import VideoEntry  # noqa: E402
from hiera_video.datasets.reencode import reencode_video  # noqa: E402
from hiera_video.datasets.sampling import train_clip_indices  # noqa: E402
from hiera_video.datasets.synthetic import write_video  # noqa: E402


def decode_floor(path: str, indices: list[int]) -> np.ndarray:
    """PyAV decoding exactly the frames ``indices`` (sorted, of a constant-rate file) need, with PyAV's
    default (slice) threading: seek to the keyframe before the first, decode to the last, convert the
    wanted ones to RGB."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        ticks_per_frame = 1 / (stream.average_rate * stream.time_base)
        wanted = {round(i * ticks_per_frame) + (stream.start_time or 0) for i in indices}
        container.seek(min(wanted), stream=stream, backward=True, any_frame=False)
        frames = []
        for frame in container.decode(stream):
            if frame.pts in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
            if frame.pts >= max(wanted):
                break
    return np.stack(frames)


def draw_clips(num_frames: int, count: int, seed: int) -> list[list[int]]:
    """``count`` random 16 x 4 training clips of a 30 fps video (sorted unique frame indices)."""
    generator = torch.Generator().manual_seed(seed)
    return [sorted(set(train_clip_indices(num_frames, 30.0, 16, 4, 30.0, generator=generator).tolist()))
            for _ in range(count)]


def read_clip(path: str, indices: list[int], threads: int, short_side=None) -> torch.Tensor:
    """Our reader, opened per clip as the dataset does."""
    with open_video(path, threads=threads) as video:
        return video.get_frames(indices, short_side=short_side)


def make_copies(folder: Path, args) -> dict[str, list[str]]:
    """Source videos and their re-encoded copies: {copy name: paths}."""
    copies = {"source (x264 defaults)": [], "short side 320, keyframes every 250": [],
              "short side 320, keyframes every 30 (reencode default)": []}
    for i in range(args.num_videos):
        frames = kinetics_like_frames(int(args.seconds * 30), args.height, args.width, seed=i)
        source = write_video(folder / f"video{i}.mp4", frames)
        copies["source (x264 defaults)"].append(source)
        copies["short side 320, keyframes every 250"].append(
            reencode_video(source, folder / f"video{i}_320_k250.mp4", keyframe_interval=250))
        copies["short side 320, keyframes every 30 (reencode default)"].append(
            reencode_video(source, folder / f"video{i}_320_k30.mp4"))
    return copies


def per_clip_cases(copies: dict[str, list[str]], clips: list[list[list[int]]]) -> list[tuple]:
    """(copy, method, function) per measured configuration; each function reads every drawn clip once."""
    def over_clips(paths, read):
        return lambda: [read(path, clip) for path, video_clips in zip(paths, clips) for clip in video_clips]

    cases = []
    for name, paths in copies.items():
        cases.append((name, "floor: PyAV, needed frames only", over_clips(paths, decode_floor)))
        cases.append((name, "our reader, slice threads (training)", over_clips(paths, lambda p, c: read_clip(p, c, 1))))
        cases.append((name, "our reader, frame threads (testing)", over_clips(paths, lambda p, c: read_clip(p, c, 0))))
        if name.startswith("source"):
            cases.append((name, "our reader, slice threads, decoded at short side 320",
                          over_clips(paths, lambda p, c: read_clip(p, c, 1, short_side=320))))
        dataset = VideoClipDataset(benchmark_cfg("pyav", 0.0), [VideoEntry(p, 0) for p in paths], ["x"], "train")
        cases.append((name, "training item (decode + augmentation), random positions",
                      lambda dataset=dataset, n=len(clips[0]): [dataset.load_train_clip(i) for i in range(len(dataset))
                                                                for _ in range(n)]))
    return cases


def loader_case(name: str, paths: list[str], clips_per_video: int, timeout: float) -> tuple:
    """The training DataLoader, one worker (persistent, started outside the timing), random positions,
    with the decode watchdog (DATA.DECODE_TIMEOUT ``timeout``) or without (0)."""
    dataset = VideoClipDataset(benchmark_cfg("pyav", timeout), [VideoEntry(p, 0) for p in paths * clips_per_video],
                               ["x"], "train")
    loader = DataLoader(dataset, batch_size=1, num_workers=1, persistent_workers=True,
                        collate_fn=dataset.collate_fn)
    list(loader)
    watchdog = "decode watchdog (default)" if timeout else "no watchdog"
    return name, f"DataLoader, 1 worker, {watchdog}", lambda: list(loader)


def main() -> None:
    """Encode, re-encode, time every configuration, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--clips", type=int, default=6, help="random training clips per video")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        copies = make_copies(Path(folder), args)
        num_frames = int(args.seconds * 30)
        clips = [draw_clips(num_frames, args.clips, seed=i) for i in range(args.num_videos)]
        cases = per_clip_cases(copies, clips)
        cases += [loader_case(name, paths, args.clips, timeout)
                  for name, paths in copies.items() for timeout in (60.0, 0.0)]
        best = [float("inf")] * len(cases)
        for _ in range(args.repeats):
            for position, (_name, _method, function) in enumerate(cases):
                start = time.perf_counter()
                function()
                best[position] = min(best[position], time.perf_counter() - start)
    num_clips = args.num_videos * args.clips
    print(f"{args.num_videos} videos of {args.seconds:g} s, {args.width}x{args.height}, H.264 30 fps; "
          f"{num_clips} training clips (16 x 4) per row; torch threads 1; best of {args.repeats} interleaved rounds\n")
    print("| video files | method | ms per clip | rate / floor on these files |")
    print("|---|---|---|---|")
    floor = {}
    for (name, method, _function), seconds in zip(cases, best):
        per_clip = seconds / num_clips
        floor.setdefault(name, per_clip)
        print(f"| {name} | {method} | {per_clip * 1000:.1f} | {floor[name] / per_clip:.2f} |")


if __name__ == "__main__":
    main()
