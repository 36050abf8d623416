"""Write a ``path label`` video list (Kinetics / SSv2 PySlowFast lists) into tar shards and a manifest.

    python tools/make_shards.py LIST --prefix VIDEO_DIR --out SHARD_DIR [--split NAME]
        [--shard-size 1G] [--max-per-shard N] [--separator ' ']

Writes ``SHARD_DIR/{split}-000000.tar, ...`` (WebDataset's layout: ``<key>.mp4`` unchanged, ``<key>.cls``,
``<key>.json``) and ``SHARD_DIR/{split}.json`` (the manifest); ``--split`` defaults to the list's name
(``train.csv`` -> ``train``). Rerunning keeps the shards already written. Train and test on them with
``DATA.FORMAT shards DATA.PATH_TO_DATA_DIR SHARD_DIR`` (a folder or a URL where SHARD_DIR was uploaded).
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.datasets.shards import make_shards, parse_size  # noqa: E402
from hiera_video.utils.errors import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """``LIST --out DIR [--prefix DIR] [--split NAME] [--shard-size SIZE] [--max-per-shard N]``."""
    parser = argparse.ArgumentParser(description="Write a path-label video list into tar shards and a manifest.")
    parser.add_argument("list", help="the list file: one 'path label' per line")
    parser.add_argument("--out", required=True, help="folder for the shards and the manifest")
    parser.add_argument("--prefix", default="", help="folder the list's paths are relative to (DATA.PATH_PREFIX)")
    parser.add_argument("--split", default=None, help="split name (default: the list's file name without extension)")
    parser.add_argument("--shard-size", default="1G", help="bytes of videos per shard, e.g. 500M, 1G (default 1G)")
    parser.add_argument("--max-per-shard", type=int, default=None, help="at most this many videos per shard")
    parser.add_argument("--separator", default=" ", help="between path and label (DATA.PATH_LABEL_SEPARATOR)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Write the shards; print one summary line."""
    args = parse_args(argv)
    split = args.split or os.path.splitext(os.path.basename(args.list))[0]
    manifest = make_shards(args.list, args.out, split, args.prefix, args.separator, parse_size(args.shard_size),
                           args.max_per_shard)
    print(f"{split}: {manifest['total']} videos in {len(manifest['shards'])} shards; manifest "
          f"{os.path.join(args.out, split + '.json')}")
    if manifest["missing"]:
        print(f"{len(manifest['missing'])} listed videos do not exist (kept as empty members, which fail like "
              f"missing files), e.g. {manifest['missing'][0]}; the manifest lists them")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
