"""Extract SSv2 WebM videos to JPEG frames and write a PySlowFast frame list.

    python datasets/ssv2/extract_frames.py --videos DIR --annotations something-something-v2-train.json \
        --frames FRAMES_DIR --list train.csv [--quality 90]

Frames go to ``FRAMES_DIR/{id}/{id}_{n:06d}.jpg`` (n from 1), RGB, all frames of each video. The list has
the header ``original_vido_id video_id frame_id path labels``; paths are relative to ``FRAMES_DIR`` (set
``DATA.PATH_PREFIX`` to it). Videos that fail to decode are listed at the end and left out of the list (the
dataset then reports them as failed).
"""
import argparse
import json
import os
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from hiera_video.datasets.decoding import VideoDecodeError, open_video  # noqa: E402


def extract(video_path: str, frames_dir: str, video_id: str, quality: int) -> list[str]:
    """Write every frame of ``video_path`` as JPEG; return their paths relative to ``frames_dir``."""
    os.makedirs(os.path.join(frames_dir, video_id), exist_ok=True)
    with open_video(video_path) as video:
        frames = video.get_frames(range(video.num_frames))  # [T, H, W, C]
    names = []
    for number, frame in enumerate(frames.numpy(), start=1):
        name = f"{video_id}/{video_id}_{number:06d}.jpg"
        Image.fromarray(frame).save(os.path.join(frames_dir, name), quality=quality)
        names.append(name)
    return names


def main() -> None:
    """Extract every annotated video and write the frame list."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", required=True, help="folder with {id}.webm")
    parser.add_argument("--annotations", required=True, help="something-something-v2-{train,validation}.json")
    parser.add_argument("--frames", required=True, help="output folder for the JPEG frames")
    parser.add_argument("--list", required=True, help="frame list to write (train.csv or val.csv)")
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    with open(args.annotations, encoding="utf-8") as handle:
        ids = [str(item["id"]) for item in json.load(handle)]
    failed = []
    with open(args.list, "w", encoding="utf-8") as listing:
        listing.write("original_vido_id video_id frame_id path labels\n")
        for number, video_id in enumerate(tqdm(ids, desc="extracting")):
            try:
                names = extract(os.path.join(args.videos, f"{video_id}.webm"), args.frames, video_id, args.quality)
            except VideoDecodeError as error:
                failed.append(str(error))
                continue
            for frame_id, name in enumerate(names):
                listing.write(f'{video_id} {number} {frame_id} {name} ""\n')
    print(f"{len(ids) - len(failed)} of {len(ids)} videos extracted to {args.frames}; list {args.list}")
    for line in failed:
        print(f"  failed: {line}")


if __name__ == "__main__":
    main()
