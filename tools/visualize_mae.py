"""Show what an MAE checkpoint reconstructs: an image grid (input, masked input, reconstruction) per clip.

``python tools/visualize_mae.py --cfg configs/demo/mae_hiera_tiny.yaml --checkpoint CKPT --out mae.png
[--num-clips 4] [KEY VALUE ...]`` (clips come from the TEST.SPLIT list of DATA.PATH_TO_DATA_DIR).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.config import load_config  # noqa: E402
from hiera_video.utils.mae_visualization import write_mae_visualization  # noqa: E402


def main() -> None:
    """Parse arguments, write the grid, print its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", required=True, help="the MAE pretraining config")
    parser.add_argument("--checkpoint", required=True, help="MAE checkpoint (toolkit or official)")
    parser.add_argument("--out", default="mae_reconstruction.png", help="image file to write")
    parser.add_argument("--num-clips", type=int, default=4, help="clips (three rows each)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args()
    cfg = load_config(args.cfg, args.opts)
    print(write_mae_visualization(cfg, args.checkpoint, args.out, args.num_clips))


if __name__ == "__main__":
    main()
