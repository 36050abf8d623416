"""Embed videos with a Hiera checkpoint: one feature vector per video (the pooled, normed last stage the
classifier head sees, averaged over the test views) in one .npz, or in shards with an index.

    python tools/extract_features.py VIDEO|DIR ... --checkpoint CKPT --output feats.npz
    python tools/extract_features.py --split train|val|test --checkpoint CKPT --output feats.npz
        [--cfg CFG | --model NAME] [--per-view] [--shard-size N] [--workers N] [--batch-size CLIPS] [--device cpu|cuda] [--precision auto|fp32|bf16|fp16] [--compile]
        [--opts KEY VALUE ...]

Under ``torchrun --nproc_per_node N`` each rank embeds its own shards and rank 0 writes the result. A rerun
after an interruption skips the finished shards. Exit status 1 when any video could not be decoded (they
are listed in ``failed``). See :mod:`hiera_video.inference.features`.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hiera_video.utils.errors import UserError, run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``tools/extract_features.py``."""
    parser = argparse.ArgumentParser(prog="extract_features.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", help="video files or folders (or --split with --cfg)")
    parser.add_argument("--checkpoint", required=True, help="toolkit checkpoint or official Hiera weights")
    parser.add_argument("--cfg", help="config file, used instead of the one a toolkit checkpoint carries")
    parser.add_argument("--model", help="model name for official weights without a config (hiera_base_16x224)")
    parser.add_argument("--split", choices=["train", "val", "test"], help="embed this split of the config's dataset (e.g. --opts DATA.PATH_TO_DATA_DIR DIR)")
    parser.add_argument("--output", required=True, help="the .npz to write (shards: NAME-00000.npz, NAME.index.json)")
    parser.add_argument("--per-view", action="store_true", help="also write every view's features (view_features)")
    parser.add_argument("--shard-size", type=int, help="videos per shard; keep the shards and an index JSON")
    parser.add_argument("--workers", type=int, default=0, help="decoding DataLoader workers")
    parser.add_argument("--batch-size", type=int, help="clips per forward pass (default TEST.BATCH_SIZE)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"),
                        help="autocast: auto = bf16/fp16 on GPU, bf16 on CPUs with AMX/AVX512-BF16, else fp32")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (frozen weights): ~30 s more at the start, 1.1-1.3x faster after")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides, e.g. --opts TEST.NUM_SPATIAL_CROPS 1")
    return parser


def main() -> int:
    """Run the tool; returns the exit status (1 when a video failed)."""
    import torch

    from hiera_video.datasets import build_dataset
    from hiera_video.engine.distributed import cleanup_distributed, setup_distributed
    from hiera_video.engine.compiled import COMPILE_NOTICE
    from hiera_video.engine.precision import precision_name
    from hiera_video.inference.features import FeatureExtractor, extract_to_file, load_feature_model
    from hiera_video.inference.sources import find_videos
    from hiera_video.utils.memory import keep_freed_memory

    args = build_parser().parse_args()
    keep_freed_memory()  # forward passes reuse the heap instead of page-faulting fresh blocks
    if bool(args.inputs) == bool(args.split):
        raise UserError("give video files / folders or --split train|val|test, not both and not neither")
    if args.shard_size is not None and args.shard_size < 1:
        raise UserError(f"--shard-size must be at least 1 video, got {args.shard_size}")
    if len(args.opts) % 2:
        raise UserError(f"config overrides come in KEY VALUE pairs, got {args.opts}")
    model, cfg = load_feature_model(args.checkpoint, args.cfg, args.model, args.opts)
    use_gpu = args.device == "cuda" or (args.device is None and torch.cuda.is_available())
    ctx = setup_distributed(1 if use_gpu else 0)  # a GPU per torchrun process: cuda:LOCAL_RANK
    extractor = FeatureExtractor(model, cfg, device=ctx.device, batch_size=args.batch_size, per_view=args.per_view,
                                 precision=args.precision, compile=args.compile)
    if ctx.is_main:
        print(f"precision: {precision_name(extractor.precision)} on {ctx.device.type}", file=sys.stderr)
        if args.compile:
            print(f"compile: {COMPILE_NOTICE}", file=sys.stderr)
    paths = None if args.split else find_videos(args.inputs)
    dataset = build_dataset(cfg, args.split, mode="test") if args.split else None
    try:
        features = extract_to_file(extractor, args.output, paths, dataset, args.shard_size, args.workers,
                                   ctx.rank, ctx.world_size, progress=ctx.is_main)
    finally:
        cleanup_distributed()
    if features is None:
        return 0
    for path, reason in features.failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    summary = {"output": args.output, "videos": len(features.paths), "dim": int(features.features.shape[1]),
               "failed": [{"path": path, "error": reason} for path, reason in features.failed]}
    print(json.dumps(summary, indent=2))
    return 1 if features.failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
