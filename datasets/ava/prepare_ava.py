"""Prepare AVA v2.2 for hiera-video: trim movies, extract frames, write frame lists, check annotations.

    python datasets/ava/prepare_ava.py trim    --movies data/ava/movies --out data/ava/videos
    python datasets/ava/prepare_ava.py frames  --videos data/ava/videos --out data/ava/frames
    python datasets/ava/prepare_ava.py lists   --frames data/ava/frames --annotations data/ava/annotations \
                                               --out data/ava/frame_lists
    python datasets/ava/prepare_ava.py check   --annotations data/ava/annotations [--videos data/ava/videos]

Steps are resumable: existing outputs are skipped. See datasets/ava/README.md.
"""
import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

from hiera_video.datasets.ava import AVA_KEYFRAME_SECONDS, VIDEO_EXTENSIONS, write_frame_list
from hiera_video.datasets.ava_preparation import extract_frames, trim_video
from hiera_video.evaluation import AVA_EVALUATED_ACTION_IDS, iter_box_rows, read_exclusions, read_label_map

SPLIT_GROUNDTRUTH = {"train": "ava_train_v2.2.csv", "val": "ava_val_v2.2.csv"}


def _video_files(folder: str) -> dict[str, str]:
    return {os.path.splitext(name)[0]: os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.endswith(VIDEO_EXTENSIONS)}


def _trim_one(job: tuple[str, str]) -> str:
    source, destination = job
    try:
        trim_video(source, destination + ".part.mp4")
        os.replace(destination + ".part.mp4", destination)
        return f"ok {destination}"
    except Exception as error:  # one bad movie must not stop the others; reported at the end
        if os.path.exists(destination + ".part.mp4"):
            os.remove(destination + ".part.mp4")
        return f"FAILED {source}: {error}"


def _extract_one(job: tuple[str, str, str]) -> str:
    video, frame_dir, video_id = job
    try:
        return f"ok {video_id}: {extract_frames(video, frame_dir, video_id)} frames"
    except Exception as error:
        return f"FAILED {video}: {error}"


def _run(jobs, function, workers: int) -> int:
    failures = 0
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        for message in pool.map(function, jobs) if pool else map(function, jobs):
            print(message, flush=True)
            failures += message.startswith("FAILED")
    print(f"{len(jobs) - failures} done, {failures} failed")
    return 1 if failures else 0


def trim(args) -> int:
    """Seconds 900..1801 of every movie -> <out>/<video_id>.mp4 at 30 fps."""
    os.makedirs(args.out, exist_ok=True)
    jobs = [(path, os.path.join(args.out, video_id + ".mp4")) for video_id, path in _video_files(args.movies).items()
            if not os.path.exists(os.path.join(args.out, video_id + ".mp4"))]
    return _run(jobs, _trim_one, args.workers)


def frames(args) -> int:
    """Every frame of each trimmed video -> <out>/<video_id>/<video_id>_%06d.jpg."""
    jobs = [(path, os.path.join(args.out, video_id), video_id) for video_id, path in _video_files(args.videos).items()
            if not os.path.isdir(os.path.join(args.out, video_id))]
    return _run(jobs, _extract_one, args.workers)


def lists(args) -> int:
    """frame_lists/{train,val}.csv for the videos of each split's ground truth that have frames."""
    os.makedirs(args.out, exist_ok=True)
    extracted = set(os.listdir(args.frames))
    for split, groundtruth in SPLIT_GROUNDTRUTH.items():
        video_ids = list(dict.fromkeys(row.video_id for row in iter_box_rows(os.path.join(args.annotations, groundtruth))))
        missing = [video_id for video_id in video_ids if video_id not in extracted]
        count = write_frame_list(args.frames, [v for v in video_ids if v in extracted],
                                 os.path.join(args.out, f"{split}.csv"))
        print(f"{split}: {len(video_ids) - len(missing)} videos, {count} frames; {len(missing)} without frames"
              + (f": {', '.join(missing[:10])}" if missing else ""))
    return 0


def check(args) -> int:
    """Parse every annotation file (errors name file:line) and report keyframes, classes and videos."""
    annotations = args.annotations
    label_map = read_label_map(os.path.join(annotations, "ava_action_list_v2.2_for_activitynet_2019.pbtxt"))
    print(f"label map: {len(label_map)} classes"
          + ("" if sorted(label_map) == list(AVA_EVALUATED_ACTION_IDS) else " (NOT the 60 evaluated ids)"))
    excluded = read_exclusions(os.path.join(annotations, "ava_val_excluded_timestamps_v2.2.csv"))
    print(f"excluded val keyframes: {len(excluded)}")
    videos = set(_video_files(args.videos)) if args.videos else None
    for name in ("ava_train_v2.2.csv", "ava_val_v2.2.csv", "ava_train_predicted_boxes.csv", "ava_val_predicted_boxes.csv"):
        path = os.path.join(annotations, name)
        if not os.path.exists(path):
            print(f"{name}: missing")
            continue
        rows = list(iter_box_rows(path))
        keyframes = {(row.video_id, row.timestamp) for row in rows}
        outside = sum(second not in AVA_KEYFRAME_SECONDS for _, second in keyframes)
        video_ids = {video_id for video_id, _ in keyframes}
        line = f"{name}: {len(rows)} rows, {len(keyframes)} keyframes ({outside} outside 902..1798), {len(video_ids)} videos"
        if videos is not None:
            line += f", {len(video_ids - videos)} without a trimmed video"
        print(line)
    return 0


def main(argv=None) -> int:
    """Parse the sub-command and run it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function, options in (
        ("trim", trim, ("movies", "out")),
        ("frames", frames, ("videos", "out")),
        ("lists", lists, ("frames", "annotations", "out")),
        ("check", check, ("annotations",)),
    ):
        command = commands.add_parser(name, help=function.__doc__)
        for option in options:
            command.add_argument(f"--{option}", required=True)
        if name == "check":
            command.add_argument("--videos", default=None)
        command.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
        command.set_defaults(function=function)
    args = parser.parse_args(argv)
    return args.function(args)


if __name__ == "__main__":
    sys.exit(main())
