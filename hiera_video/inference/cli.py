"""``tools/predict.py``: classify video files with a trained or downloaded Hiera checkpoint.

Prints one top-k table per video (and per window with ``--window``); ``--json`` writes the records of
:mod:`hiera_video.inference.predictor`, with ``output_video`` added where ``--output-video`` wrote one.
A progress bar shows on a terminal when there are several videos.

The ``--json`` file is written before the table is printed. Undecodable bytes in file names print as
``\\xNN``; the JSON keeps the name as Python reads it (surrogate escapes, e.g. ``"\\udcff"``).

Exit status: 0 when every video was predicted, 1 when some failed (they are listed; the others are still
predicted and written) or the ``--json`` file cannot be written, 2 for bad arguments (each says what is
allowed) or a checkpoint / config / label file that cannot be used (untrusted weights included: missing
weights, NaN / infinity, a checksum mismatch); nothing is predicted then.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable, Optional, Sequence

from hiera_video.utils.errors import UserError
from hiera_video.utils.memory import keep_freed_memory

from .report import format_results, printable, write_json
from .sources import find_videos
from .windows import ViewSpec

EXAMPLES = """examples:
  python tools/predict.py clip.mp4 --checkpoint out/checkpoints/checkpoint_epoch_00050.pyth
  python tools/predict.py videos/ --checkpoint ckpt.pyth --json predictions.json --views 1x3
  python tools/predict.py long.mp4 --checkpoint ckpt.pyth --window 4 --output-video long_labels.mp4
  python tools/predict.py clip.mp4 --checkpoint hiera_base_16x224.pth --model hiera_base_16x224 \\
      --labels kinetics_400_labels.txt
"""


def view_spec(text: str) -> ViewSpec:
    """``--views`` / ``--window-views``: ``TxS`` with T >= 1 clips and S = 1 or 3 crops."""
    try:
        return ViewSpec.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def checked_number(kind: Callable[[str], float], allowed: Callable[[float], bool],
                   what: str) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` (int or float), finite and ``allowed``; otherwise the argument error
    says ``what`` is allowed."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not allowed(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


POSITIVE_INT = checked_number(int, lambda value: value >= 1, "a whole number of at least 1")
NON_NEGATIVE_INT = checked_number(int, lambda value: value >= 0, "a whole number of at least 0")
POSITIVE_SECONDS = checked_number(float, lambda value: value > 0, "a positive number of seconds")
NON_NEGATIVE_SECONDS = checked_number(float, lambda value: value >= 0, "0 or a positive number of seconds")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``tools/predict.py``."""
    parser = argparse.ArgumentParser(
        prog="predict.py", description="What is happening in these clips? Top-k labels of a video classifier.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files and/or folders of videos")
    parser.add_argument("--checkpoint", required=True, help="toolkit checkpoint (.pyth: carries config and "
                        "class names), or official Hiera / plain / safetensors weights with --cfg or --model")
    parser.add_argument("--cfg", help="YAML config of the model (default: the one stored in the checkpoint)")
    parser.add_argument("--model", help="model name for checkpoints without a config, e.g. hiera_base_16x224")
    parser.add_argument("--labels", help="class names: one per line, or JSON (default: from the checkpoint)")
    parser.add_argument("--top-k", type=POSITIVE_INT, default=5,
                        help="labels to show per video / window (default 5)")
    parser.add_argument("--views", type=view_spec, metavar="TxS",
                        help="temporal clips x spatial crops of the whole video, e.g. 5x3 (default: the config's "
                        "TEST views, as in testing)")
    parser.add_argument("--window", type=POSITIVE_SECONDS, metavar="SECONDS",
                        help="also predict every window of this many seconds (start/end times in the output)")
    parser.add_argument("--window-views", type=view_spec, metavar="TxS",
                        help="views of each --window (default: 1 x the config's crops)")
    parser.add_argument("--json", metavar="OUT", help="write one record per video to this JSON file")
    parser.add_argument("--output-video", metavar="OUT",
                        help="write the clip with its top labels drawn on (an .mp4; a folder for several videos)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="autocast: auto = bf16/fp16 on GPU, bf16 on CPUs with AMX/AVX512-BF16, else float32")
    parser.add_argument("--batch-size", type=POSITIVE_INT,
                        help="clips per forward pass (default: TEST.BATCH_SIZE)")
    parser.add_argument("--workers", type=NON_NEGATIVE_INT, default=min(4, os.cpu_count() or 1),
                        help="decoding processes for several videos (default: up to 4)")
    parser.add_argument("--backend", choices=("pyav", "decord", "torchcodec"),
                        help="video decoder (default: DATA.DECODING_BACKEND)")
    parser.add_argument("--decode-timeout", type=NON_NEGATIVE_SECONDS, metavar="SECONDS",
                        help="give up on a video whose decoding hangs this long "
                        "(default: DATA.DECODE_TIMEOUT; 0: never)")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides, e.g. --opts DATA.TEST_CROP_SIZE 256")
    return parser


def overlay_paths(records: Sequence[dict], target: str) -> list[Optional[str]]:
    """Where each predicted video's labelled copy goes: ``target`` itself for one video, else
    ``target/<name>_labels.mp4`` (numbered when names repeat); None for failed videos."""
    if len(records) == 1:
        return [target if records[0]["error"] is None else None]
    used: set[str] = set()
    paths: list[Optional[str]] = []
    for record in records:
        if record["error"] is not None:
            paths.append(None)
            continue
        stem = os.path.splitext(os.path.basename(record["path"]))[0]
        name, number = f"{stem}_labels.mp4", 2
        while name in used:
            name, number = f"{stem}_labels_{number}.mp4", number + 1
        used.add(name)
        paths.append(os.path.join(target, name))
    return paths


def write_overlays(records: Sequence[dict], target: str, top_k: int) -> int:
    """Write the labelled videos; returns how many could not be written (each reported on stderr)."""
    from hiera_video.datasets.decoding import VideoDecodeError

    from .overlay import write_overlay_video

    failures = 0
    for record, path in zip(records, overlay_paths(records, target)):
        if path is None:
            continue
        try:
            record["output_video"] = write_overlay_video(record["path"], path, record, top_k=top_k)["path"]
        except VideoDecodeError as error:
            show_error(error)
            failures += 1
    return failures


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``tools/predict.py`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # forward passes reuse the heap instead of page-faulting fresh blocks
    if len(args.opts) % 2:
        parser.error(f"--opts takes KEY VALUE pairs, got {len(args.opts)} words")
    if args.window_views and not args.window:
        parser.error("--window-views needs --window")
    try:
        videos = find_videos(args.videos)
        if args.output_video and len(videos) > 1 and os.path.splitext(args.output_video)[1]:
            raise ValueError(f"--output-video {args.output_video}: for {len(videos)} videos give a folder, "
                             "not a file name")
        classifier = _load(args)
    except (UserError, OSError, ValueError, RuntimeError) as error:  # checkpoint, config, label errors say why
        show_error(error)
        return 2
    from hiera_video.engine.precision import precision_name

    auto = " (--precision auto)" if args.precision == "auto" else ""
    print(f"precision: {precision_name(classifier.precision)} on {classifier.device.type}{auto}", file=sys.stderr)
    records = classifier.predict_many(videos, top_k=args.top_k, views=args.views, window=args.window,
                                      window_views=args.window_views,
                                      num_workers=args.workers if len(videos) > 1 else 0,
                                      progress=len(videos) > 1 and sys.stderr.isatty())
    overlay_failures = write_overlays(records, args.output_video, min(args.top_k, 5)) if args.output_video else 0
    json_failed = bool(args.json) and not _write_json_file(records, args.json)  # before printing: nothing to lose
    show(format_results(records), sys.stdout)
    failed = sum(record["error"] is not None for record in records) + overlay_failures + json_failed
    return 1 if failed else 0


def show(text: str, stream) -> None:
    """Print ``text`` on ``stream`` whatever its encoding: undecodable bytes of file names as ``\\xNN``."""
    print(printable(text, getattr(stream, "encoding", None) or "utf-8"), file=stream)


def show_error(error: object) -> None:
    """The ``error: ...`` line of a failure on stderr."""
    show(f"error: {error}", sys.stderr)


def _write_json_file(records: Sequence[dict], path: str) -> bool:
    """Write ``--json``; False (with an error line) when it cannot be written."""
    try:
        write_json(records, path)
    except OSError as error:
        show_error(f"cannot write --json {path}: {error.strerror or error}")
        return False
    return True


def _load(args: argparse.Namespace):
    from .predictor import VideoClassifier

    return VideoClassifier.from_checkpoint(
        args.checkpoint, cfg=args.cfg, model_name=args.model, labels=args.labels, opts=args.opts,
        device=args.device, precision=args.precision, batch_size=args.batch_size, backend=args.backend,
        decode_timeout=args.decode_timeout)
