"""Write the synthetic motion dataset (Kinetics format) used by the demo: ``python tools/make_synthetic_dataset.py OUT``.

Classes differ only in the direction and speed of moving shapes over noise (see
:mod:`hiera_video.utils.motion_dataset`). Train with ``DATA.PATH_TO_DATA_DIR OUT DATA.PATH_PREFIX OUT``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.utils.motion_dataset import CLASS_NAMES, make_motion_dataset  # noqa: E402
from hiera_video.utils.errors import run_cli  # noqa: E402


def main() -> None:
    """Parse arguments and write the dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write videos/, train.csv, val.csv, test.csv and labels.txt into")
    parser.add_argument("--train-per-class", type=int, default=24, help="training videos per class")
    parser.add_argument("--val-per-class", type=int, default=6, help="validation videos per class")
    parser.add_argument("--test-per-class", type=int, default=6, help="test videos per class")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the same seed writes the same videos)")
    args = parser.parse_args()
    counts = {"train": args.train_per_class, "val": args.val_per_class, "test": args.test_per_class}
    out_dir = make_motion_dataset(args.out_dir, counts, seed=args.seed)
    print(f"Wrote {sum(counts.values()) * len(CLASS_NAMES)} videos of {len(CLASS_NAMES)} classes to {out_dir}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
