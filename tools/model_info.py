"""Print parameters and GMACs (attention included) of named Hiera models.

    python tools/model_info.py                      # every named model
    python tools/model_info.py hiera_large_16x224   # some of them
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hiera_video.models import list_models  # noqa: E402
from hiera_video.models.complexity import model_complexity  # noqa: E402
from hiera_video.utils.errors import run_cli  # noqa: E402


def main(argv=None) -> None:
    """Parse model names and print a table of their size and cost."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="model names (default: all); see --list")
    parser.add_argument("--list", action="store_true", help="list the model names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(list_models()))
        return
    print(f"{'model':<28} {'input':>10} {'params (M)':>11} {'GMACs':>9}")
    unmeasured = False
    for name in args.names or list_models():
        info = model_complexity(name)
        unmeasured |= info["gmacs"] is None
        gmacs = "-" if info["gmacs"] is None else f"{info['gmacs']:.1f}"
        print(f"{name:<28} {info['input_size']:>10} {info['params_m']:>11.2f} {gmacs:>9}")
    if unmeasured:
        print("-: an MAE model's cost depends on its random mask (the encoder sees only the kept mask units, "
              "10% at MAE.MASK_RATIO 0.9), which the meta-device count cannot draw.")


if __name__ == "__main__":
    sys.exit(run_cli(main))
