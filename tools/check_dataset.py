"""Probe every listed video, in parallel with a timeout: a manifest and the list of bad files.

    python tools/check_dataset.py --cfg configs/K400/hiera_l.yaml [--split train val] [--workers 8]
        [--output DIR] [KEY VALUE ...]

Writes ``manifest_{split}.csv`` (path, label, frames, fps, duration, codec, size) and
``bad_videos_{split}.csv`` (path, label, list line, error) to ``--output`` (default
``OUTPUT_DIR/check_dataset``). The per-video timeout is ``DATA.DECODE_TIMEOUT``. Exits with status 1 when
a video is bad.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.config import load_config  # noqa: E402
from hiera_video.datasets.probe import check_dataset  # noqa: E402
from hiera_video.utils.errors import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """``--cfg FILE [--split ...] [--workers N] [--output DIR] [KEY VALUE ...]``."""
    parser = argparse.ArgumentParser(description="Probe every listed video; write a manifest and the bad files.")
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="YAML config file (may use _BASE_).")
    parser.add_argument("--split", nargs="+", default=["train", "val"], choices=["train", "val", "test"])
    parser.add_argument("--workers", type=int, default=8, help="videos probed at once")
    parser.add_argument("--output", default=None, help="folder for the CSVs (default OUTPUT_DIR/check_dataset)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Probe the requested splits; print one summary line per split; 1 when any video is bad."""
    args = parse_args(argv)
    cfg = load_config(args.cfg_file, args.opts)
    output = args.output or os.path.join(cfg.OUTPUT_DIR, "check_dataset")
    any_bad = False
    for split in args.split:
        summary = check_dataset(cfg, split, output, args.workers)
        any_bad |= summary["bad"] > 0
        print(f"{split}: {summary['listed']} listed, {summary['good']} good, {summary['bad']} bad; "
              f"manifest {summary['manifest']}, bad files {summary['bad_list']}")
    return 1 if any_bad else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
