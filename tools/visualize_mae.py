"""Show what an MAE checkpoint reconstructs: a labelled figure of input, masked input, reconstruction and
reconstruction pasted into the visible parts, per clip. After ``python tools/run_net.py --demo``:

    python tools/visualize_mae.py --checkpoint demo_output/mae --out demo_output/mae/reconstruction.png

``--checkpoint`` takes a checkpoint file or a run's OUTPUT_DIR (its latest checkpoint). The config is the
one saved in the checkpoint unless ``--cfg FILE`` is given; trailing ``KEY VALUE`` pairs override it. Clips
come from the TEST.SPLIT list of DATA.PATH_TO_DATA_DIR. Needs matplotlib (``pip install -e ".[plot]"``).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.utils.errors import run_cli  # noqa: E402
from hiera_video.utils.mae_visualization import write_mae_visualization  # noqa: E402


def main() -> None:
    """Parse arguments, write the figure, print its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="MAE checkpoint file, or the OUTPUT_DIR of an MAE run")
    parser.add_argument("--cfg", default=None, help="MAE config (default: the one saved in the checkpoint)")
    parser.add_argument("--out", default="mae_reconstruction.png", help="image file to write")
    parser.add_argument("--num-clips", type=int, default=2, help="clips to show side by side")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args()
    print(write_mae_visualization(args.checkpoint, args.out, args.cfg, args.opts, args.num_clips))


if __name__ == "__main__":
    sys.exit(run_cli(main))
