"""Re-encode a Kinetics-style list's videos for fast training: short side 320, a keyframe every 30 frames.

    python datasets/kinetics/resize_videos.py --list lists/train.csv --videos /data/k400 --out /data/k400_320 \
        [--short-side 320] [--keyframe-interval 30] [--crf 23] [--workers 8]

Reads a PySlowFast ``path label`` list whose paths are relative to ``--videos``, writes every video as H.264
MP4 at the same relative path under ``--out`` (extension ``.mp4``), and writes the list for the new files
as ``--out/<list name>`` (train with ``DATA.PATH_TO_DATA_DIR`` and ``DATA.PATH_PREFIX`` set to ``--out``).
Resumable: videos already written are kept. A video that cannot be decoded stays in the new list under its
original path, so training counts and reports it; it is named here and the exit status is 1.
See ``benchmarks/decode_floor.py`` for what this saves per training clip.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from hiera_video.datasets.list_files import read_path_label_list  # noqa: E402
from hiera_video.datasets.reencode import CRF, KEYFRAME_INTERVAL, SHORT_SIDE, reencode_videos  # noqa: E402
from hiera_video.utils.errors import MissingInputError, run_cli  # noqa: E402


def main() -> int:
    """Parse arguments, re-encode the listed videos, write the new list; 1 if any video failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", required=True, help="PySlowFast list of 'path label' lines")
    parser.add_argument("--videos", required=True, help="folder the list's paths are relative to")
    parser.add_argument("--out", required=True, help="folder to write the videos and the new list to")
    parser.add_argument("--short-side", type=int, default=SHORT_SIDE, help="pixels (never scaled up)")
    parser.add_argument("--keyframe-interval", type=int, default=KEYFRAME_INTERVAL, help="frames between keyframes")
    parser.add_argument("--crf", type=int, default=CRF, help="x264 quality (lower: better, larger)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="encoding processes")
    args = parser.parse_args()
    if not os.path.isfile(args.list):
        raise MissingInputError(f"--list {args.list}: no such file")
    entries = read_path_label_list(args.list)
    targets = [str(Path(args.out) / Path(entry.path).with_suffix(".mp4")) for entry in entries]
    pairs = [(os.path.join(args.videos, entry.path), target) for entry, target in zip(entries, targets)]
    report = reencode_videos(pairs, workers=args.workers, short_side=args.short_side,
                             keyframe_interval=args.keyframe_interval, crf=args.crf)
    failed = {os.path.abspath(source) for source in report.failed}
    lines = []
    for entry, target in zip(entries, targets):
        source = os.path.abspath(os.path.join(args.videos, entry.path))
        path = source if source in failed else os.path.relpath(target, args.out)
        lines.append(f"{path} {entry.label}")
    new_list = Path(args.out) / Path(args.list).name
    new_list.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{report.summary()}; list: {new_list}")
    for source, reason in report.failed.items():
        print(f"failed: {source}: {reason}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
