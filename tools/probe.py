"""Probe frozen features: k-NN (DINO's weighted vote) or a linear classifier (MAE's linear probe) trained on
the features of one split and scored on another; prints top-1 / top-5.

    python tools/probe.py --train train.npz --test val.npz --method knn [--k 20] [--temperature 0.07]
    python tools/probe.py --train train.npz --test val.npz --method linear [--epochs 100] [--lr 0.1]
        [--weight-decay 0] [--batch-size 256] [--json result.json]

Features come from ``tools/extract_features.py`` (an ``.npz`` or a shard ``.index.json``), with labels
(``--split``). See :mod:`hiera_video.evaluation.probes`.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hiera_video.utils.errors import run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``tools/probe.py``."""
    from hiera_video.evaluation.probes import METHODS, LinearProbeOptions

    defaults = LinearProbeOptions()
    parser = argparse.ArgumentParser(prog="probe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="features of the training split (.npz or .index.json)")
    parser.add_argument("--test", required=True, help="features of the split to score")
    parser.add_argument("--method", choices=METHODS, default="knn")
    parser.add_argument("--k", type=int, default=20, help="k-NN: neighbours that vote")
    parser.add_argument("--temperature", type=float, default=0.07, help="k-NN: vote weight exp(similarity / T)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="linear: training epochs")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="linear: peak SGD learning rate")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="linear: weight decay")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="linear: features per step")
    parser.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="linear: lr warmup")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="linear: initialization and order")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def main() -> int:
    """Run the probe and print its result; returns the exit status."""
    from hiera_video.evaluation.probes import LinearProbeOptions, run_probe
    from hiera_video.inference.features import load_features

    args = build_parser().parse_args()
    linear = LinearProbeOptions(args.epochs, args.lr, args.weight_decay, args.batch_size, args.warmup_epochs,
                                args.seed)
    result = run_probe(load_features(args.train), load_features(args.test), args.method, args.k,
                       args.temperature, linear)
    result.update(train=args.train, test=args.test)
    print(f"{args.method}: top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  "
          f"({result['num_test']} test videos, {result['num_train']} training videos)", file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
