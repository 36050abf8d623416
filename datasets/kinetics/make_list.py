"""Write a PySlowFast ``path label`` list (and ``classids.json``) from an official Kinetics CSV.

    python datasets/kinetics/make_list.py --annotations train.csv --videos DIR --output lists/train.csv \
        [--classes-from train.csv] [--name-format "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"]

Only videos present under ``--videos`` are listed (``.mp4``, else ``.webm`` / ``.mkv``); the count of
missing ones is printed. Class indices are positions in the sorted class names of ``--classes-from``
(default: ``--annotations``; use the training CSV for the validation list).
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from hiera_video.datasets.clip_dataset import resolve_video_path  # noqa: E402
from hiera_video.datasets.list_files import (  # noqa: E402
    KINETICS_NAME_FORMAT,
    kinetics_entries,
    read_kinetics_annotations,
)


def main() -> None:
    """Parse arguments, match rows to files, write the list and classids.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", required=True, help="official CSV (label,youtube_id,time_start,...)")
    parser.add_argument("--videos", required=True, help="folder the downloaded videos are in")
    parser.add_argument("--output", required=True, help="list file to write")
    parser.add_argument("--classes-from", default=None, help="CSV whose sorted labels define class indices")
    parser.add_argument("--name-format", default=KINETICS_NAME_FORMAT)
    args = parser.parse_args()
    class_rows = read_kinetics_annotations(args.classes_from or args.annotations)
    class_names = sorted({row["label"] for row in class_rows})
    rows = read_kinetics_annotations(args.annotations)
    entries = kinetics_entries(rows, class_names, args.annotations, args.videos, args.name_format)
    present = [(resolve_video_path(entry.path), entry.label) for entry in entries]
    present = [(path, label) for path, label in present if os.path.exists(path)]
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        for path, label in present:
            handle.write(f"{os.path.relpath(path, args.videos)} {label}\n")
    with open(os.path.join(os.path.dirname(os.path.abspath(args.output)), "classids.json"), "w") as handle:
        json.dump({name: index for index, name in enumerate(class_names)}, handle, indent=1)
    print(f"{len(present)} of {len(entries)} listed videos found; {len(entries) - len(present)} missing. "
          f"Wrote {args.output} (set DATA.PATH_PREFIX to {args.videos}).")


if __name__ == "__main__":
    main()
