"""Train and / or test a Hiera video model: ``python tools/run_net.py --cfg FILE [--opts] KEY VALUE ...``.

TRAIN.ENABLE / TEST.ENABLE choose the stages and TASK the job ("classification", "mae", "ava").
The built-in demo: ``python tools/run_net.py --demo`` (synthetic data, tiny model, CPU, a few minutes).

One process: ``NUM_GPUS 0`` runs on CPU, ``NUM_GPUS 1`` on one GPU. Data parallel on one machine (one
process per GPU; gloo on CPU with NUM_GPUS 0):

    torchrun --standalone --nproc_per_node 8 tools/run_net.py --cfg configs/K400/hiera_l.yaml NUM_GPUS 1

Two machines with 8 GPUs each (run on both; node 0's address is the rendezvous point):

    torchrun --nnodes 2 --nproc_per_node 8 --node_rank 0 --rdzv_backend c10d \
        --rdzv_endpoint node0.example.com:29500 tools/run_net.py --cfg configs/K400/hiera_l.yaml
    # on the second machine the same command with --node_rank 1

SLURM (one task per node; torchrun starts the GPU processes):

    #!/bin/bash
    #SBATCH --nodes 2 --ntasks-per-node 1 --gpus-per-node 8 --cpus-per-task 64
    head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
    srun torchrun --nnodes "$SLURM_NNODES" --nproc_per_node 8 --rdzv_id "$SLURM_JOB_ID" \
        --rdzv_backend c10d --rdzv_endpoint "$head:29500" \
        tools/run_net.py --cfg configs/K400/hiera_l.yaml OUTPUT_DIR /shared/k400_hiera_l

TRAIN.BATCH_SIZE and TEST.BATCH_SIZE count clips over all processes; OUTPUT_DIR must be on storage every
machine sees (checkpoints are written by rank 0, auto-resume reads them on every rank).
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.config import load_config, parse_args  # noqa: E402
from hiera_video.engine import run  # noqa: E402
from hiera_video.engine.preemption import JobPreempted  # noqa: E402
from hiera_video.utils.errors import run_cli  # noqa: E402
from hiera_video.utils.memory import keep_freed_memory  # noqa: E402


def main() -> None:
    """Parse the command line, build the config, run the job (or the demo) and print its summary as JSON."""
    args = parse_args()
    keep_freed_memory()  # steps reuse the heap instead of page-faulting fresh blocks (CPU training 1.2x)
    try:
        if args.demo:
            from hiera_video.engine.demo import run_demo

            result = run_demo(args.opts)
        else:
            result = run(load_config(args.cfg_file, args.opts))
    except JobPreempted as stop:
        print(f"Job {stop}; its progress is saved: run the same command to resume.", file=sys.stderr)
        sys.exit(0)
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(result.summary(), indent=2, allow_nan=False))


if __name__ == "__main__":
    sys.exit(run_cli(main))
