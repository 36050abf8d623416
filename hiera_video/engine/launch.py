"""``run(cfg)``: the main job. Joins the process group, then trains and / or tests as the config says."""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from fvcore.common.config import CfgNode

from .data import cap_loader_workers, leave_cores_to_loader_workers, seed_everything
from .distributed import DistributedContext, barrier, cleanup_distributed, setup_distributed
from .logging import get_logger, setup_logging
from .preemption import PreemptionGuard, stop_if_preempted
from .tasks import Evaluation, get_task
from .tester import choose_test_checkpoint, test, test_results_dir
from .trainer import TrainResult, train


@dataclass
class JobResult:
    """What ``run`` did: the training result (None without TRAIN.ENABLE) and the test evaluation (None
    without a test stage)."""

    task: str
    training: Optional[TrainResult] = None
    test: Optional[Evaluation] = None

    def summary(self) -> dict[str, Any]:
        """The job's headline numbers (what ``tools/run_net.py`` prints as JSON): the test summary when the
        job tested, else the last training epoch's. A number that is not finite (no video scored) is None."""
        if self.test is not None:
            summary = {"task": self.task, "stage": "test", "split": self.test.split, **self.test.summary,
                       "checkpoint": self.test.checkpoint}
        elif self.training is not None:
            checkpoint = self.training.checkpoint
            summary = {"task": self.task, "stage": "train", "epochs": self.training.epochs_done,
                       **self.training.last_epoch, "checkpoint": str(checkpoint) if checkpoint else None}
        else:
            summary = {"task": self.task, "stage": "none"}
        return {key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in summary.items()}


def reuse_final_validation(cfg: CfgNode, ctx: DistributedContext, training: Optional[TrainResult]) -> Optional[Evaluation]:
    """The last epoch's validation as the test result, when it scored TEST.SPLIT with the checkpoint the test
    stage would load (same config, so the same views): its files are copied to ``OUTPUT_DIR/test``. None
    when testing has to run."""
    validation = training.validation if training is not None else None
    if validation is None or validation.checkpoint is None or validation.split != cfg.TEST.SPLIT:
        return None
    if training.epochs_done != cfg.SOLVER.MAX_EPOCH or choose_test_checkpoint(cfg) != validation.checkpoint:
        return None
    test_dir = test_results_dir(cfg)
    if ctx.is_main and validation.results_dir is not None:
        shutil.copytree(validation.results_dir, test_dir, dirs_exist_ok=True)
    barrier()
    get_logger().info("The last validation scored %s with %s and the test views: it is the test result too "
                      "(copied to %s).", validation.split, validation.checkpoint, test_dir)
    return Evaluation(validation.split, validation.checkpoint, validation.metrics, validation.summary, test_dir)


def run(cfg: CfgNode) -> JobResult:
    """Run TRAIN.ENABLE training then TEST.ENABLE testing of ``cfg.TASK``.

    Works in one process (CPU with NUM_GPUS 0, one GPU with NUM_GPUS 1) and under torchrun. SIGTERM is
    handled from the start: one received before a stage begins raises
    :class:`~hiera_video.engine.preemption.PreemptedBeforeStage` (see :mod:`preemption`).
    """
    with PreemptionGuard(action="stopping at the next point where the job can stop cleanly") as preemption:
        return _run_stages(cfg, preemption)


def _run_stages(cfg: CfgNode, preemption: PreemptionGuard) -> JobResult:
    """The job of :func:`run` under its SIGTERM guard: join the process group, then train and test."""
    ctx = setup_distributed(cfg.NUM_GPUS, cfg.DIST_BACKEND)
    caller_threads = torch.get_num_threads()
    try:
        logger = setup_logging(cfg.OUTPUT_DIR, ctx.is_main)
        if ctx.is_main:
            Path(cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
            (Path(cfg.OUTPUT_DIR) / "config.yaml").write_text(cfg.dump(), encoding="utf-8")
        logger.info("Running on %s, %d process(es); config saved to %s/config.yaml",
                    ctx.device, ctx.world_size, cfg.OUTPUT_DIR)
        seed_everything(cfg.RNG_SEED + ctx.rank)
        cap_loader_workers(cfg)
        leave_cores_to_loader_workers(cfg, ctx.device)
        result = JobResult(cfg.TASK)
        if cfg.TRAIN.ENABLE:
            stop_if_preempted(preemption, "training")
            result.training = train(cfg, ctx)
        if cfg.TEST.ENABLE:
            if get_task(cfg).has_test_stage:
                result.test = reuse_final_validation(cfg, ctx, result.training) or _test(cfg, ctx, preemption)
            else:
                logger.info("TASK %s has no test stage; TEST.ENABLE is ignored.", cfg.TASK)
        return result
    finally:
        torch.set_num_threads(caller_threads)
        cleanup_distributed()


def _test(cfg: CfgNode, ctx: DistributedContext, preemption: PreemptionGuard) -> Evaluation:
    """The test stage, unless SIGTERM came before it (during training's last validation, say)."""
    stop_if_preempted(preemption, "testing")
    return test(cfg, ctx)
