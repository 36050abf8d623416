"""Export a Hiera classifier to ONNX or torch.export (dynamic batch) and check it against the eager model.

    python tools/export.py --checkpoint CKPT [--model NAME | --cfg FILE] --format onnx|torch.export
        --output FILE [--opts KEY VALUE ...]

The exported model takes a preprocessed float32 batch [B, C, T, H, W] and returns logits; the preprocessing
is stored in the file (README "Export"). Exit 1 when the exported logits differ from eager by more than
1e-4 (relative to the largest logit when that exceeds 1).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hiera_video.models.export import (  # noqa: E402
    FORMATS, INPUT_NAME, TOLERANCE, compare_with_eager, export_model, load_exported, load_model_for_export,
)
from hiera_video.utils.errors import exit_with_error, run_cli  # noqa: E402


def main(argv=None) -> int:
    """Parse arguments, export, verify at batch 1 and 3, and print the differences."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="toolkit checkpoint, official Hiera weights or state dict")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="model name (e.g. hiera_base_16x224) when the checkpoint carries no config")
    source.add_argument("--cfg", help="the config the checkpoint was trained with")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx (onnxruntime) or torch.export")
    parser.add_argument("--output", required=True, help="file to write (.onnx or .pt2)")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides (of --cfg or the config a toolkit checkpoint carries)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = parser.parse_args(argv)
    if len(args.opts) % 2:
        parser.error(f"--opts takes KEY VALUE pairs, got {len(args.opts)} words")
    if args.model and args.opts:
        parser.error("--opts overrides a config; with --model the named architecture is used as it is")

    model = load_model_for_export(args.checkpoint, args.model, args.cfg, args.opts)
    export_model(model, args.output, args.format)
    shape = ", ".join(["batch", str(model.in_chans), *map(str, model.input_size)])
    print(f"wrote {args.output} ({args.format}): input {INPUT_NAME!r} float32 [{shape}] -> logits "
          f"[batch, {model.num_classes}]")
    comparisons = compare_with_eager(model, load_exported(args.output, args.format))
    print("max |exported - eager|: " + ", ".join(f"batch {b}: {c.max_difference:.2e}" for b, c in comparisons.items())
          + f" (largest |logit| {max(c.max_logit for c in comparisons.values()):.2f})")
    print(f"preprocessing: {model.pretrained_cfg}")
    if not all(c.within_tolerance for c in comparisons.values()):
        worst = max(c.max_difference for c in comparisons.values())
        exit_with_error(f"the exported model differs from eager by {worst:.2e} (tolerance {TOLERANCE:g}, relative "
                        "to the largest logit when above 1); do not deploy it.")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
