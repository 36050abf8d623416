"""Plot a run's loss / lr / accuracy curves: ``python tools/plot_log.py OUTPUT_DIR [--out curves.png]``.

Panels without data are left out; validation curves are drawn when the run validated. Needs matplotlib
(``pip install -e ".[plot]"`` in a checkout, or ``pip install matplotlib``).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.utils.errors import run_cli  # noqa: E402
from hiera_video.utils.plot_log import plot_training_log  # noqa: E402


def main() -> None:
    """Parse arguments, draw the curves, print where they went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", help="OUTPUT_DIR of a training run (holds stats.jsonl)")
    parser.add_argument("--out", default=None, help="PNG to write (default OUTPUT_DIR/curves.png)")
    args = parser.parse_args()
    print(plot_training_log(args.output_dir, args.out))


if __name__ == "__main__":
    sys.exit(run_cli(main))
