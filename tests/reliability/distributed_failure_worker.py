"""A 2-process torchrun job in which one rank raises mid-training, for test_distributed_failure.py.

Usage: ``torchrun --nproc_per_node 2 tests/reliability/distributed_failure_worker.py OUTPUT_DIR FAIL_RANK STEP``:
rank FAIL_RANK raises RuntimeError at its STEP-th training step; the other ranks train normally.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hiera_video.engine.tasks as tasks  # noqa: E402
from hiera_video.engine import data as engine_data  # noqa: E402
from hiera_video.engine import run  # noqa: E402
from tests.engine.fakes import MovingSquares, tiny_cfg  # noqa: E402


def main() -> None:
    """Route the engine to MovingSquares, make one rank fail at a chosen step, run the job."""
    output_dir, fail_rank, fail_step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    engine_data._build_dataset = lambda cfg, split: MovingSquares(16, split)
    original_step = tasks.ClassificationTask.training_step
    calls = {"n": 0}

    def failing_step(self, *args):
        calls["n"] += 1
        if calls["n"] == fail_step and int(os.environ["RANK"]) == fail_rank:
            raise RuntimeError(f"rank {fail_rank} failed on purpose at step {fail_step}")
        return original_step(self, *args)

    tasks.ClassificationTask.training_step = failing_step
    run(tiny_cfg(output_dir, "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "2"))


if __name__ == "__main__":
    main()
