"""Train and / or test a Hiera video model: ``python tools/run_net.py --cfg FILE [--opts] KEY VALUE ...``.

Distributed: ``torchrun --nproc_per_node N tools/run_net.py --cfg FILE NUM_GPUS 1`` (one GPU per process).
The built-in demo: ``python tools/run_net.py --demo`` (synthetic data, tiny model, CPU, a few minutes).
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.config import ConfigError, load_config, parse_args  # noqa: E402
from hiera_video.engine import run  # noqa: E402
from hiera_video.engine.preemption import JobPreempted  # noqa: E402


def main() -> None:
    """Parse the command line, build the config and run the job (or the demo)."""
    args = parse_args()
    try:
        if args.demo:
            from hiera_video.engine.demo import run_demo

            metrics = run_demo(args.opts)
        else:
            metrics = run(load_config(args.cfg_file, args.opts))
    except ConfigError as error:
        sys.exit(f"Config error: {error}")
    except JobPreempted as stop:
        print(f"Job {stop}; the checkpoint is saved: run the same command to resume.", file=sys.stderr)
        sys.exit(0)
    if metrics is not None and os.environ.get("RANK", "0") == "0":
        summary = {k: metrics[k] for k in ("top1", "top5", "mean_class_acc", "num_videos", "num_failed")}
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
