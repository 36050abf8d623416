"""``run(cfg)``: the main job. Joins the process group, then trains and / or tests as the config says."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from fvcore.common.config import CfgNode

from .data import leave_cores_to_loader_workers, seed_everything
from .distributed import cleanup_distributed, setup_distributed
from .logging import get_logger, setup_logging
from .tasks import get_task
from .tester import test
from .trainer import train


def run(cfg: CfgNode) -> Optional[dict[str, Any]]:
    """Run TRAIN.ENABLE training then TEST.ENABLE testing of ``cfg.TASK``; return the test metrics (or None).

    Works in one process (CPU with NUM_GPUS 0, one GPU with NUM_GPUS 1) and under torchrun.
    """
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
        leave_cores_to_loader_workers(cfg, ctx.device)
        metrics = None
        if cfg.TRAIN.ENABLE:
            train(cfg, ctx)
        if cfg.TEST.ENABLE:
            if get_task(cfg).has_test_stage:
                metrics = test(cfg, ctx)
            else:
                get_logger().info("TASK %s has no test stage; TEST.ENABLE is ignored.", cfg.TASK)
        return metrics
    finally:
        torch.set_num_threads(caller_threads)
        cleanup_distributed()
