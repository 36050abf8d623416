"""The test stage: ``test(cfg, ctx)`` loads the checkpoint to test and scores TEST.SPLIT with the task's
metric (:meth:`hiera_video.engine.tasks.Task.evaluate`), writing the results to ``OUTPUT_DIR/test``.

Every weight of the model must come from the checkpoint (read and checked by
:func:`hiera_video.models.checkpoint.read_checkpoint_contents`: checksum, no NaN / infinity): the metrics
of a partly random model mean nothing. TEST.ALLOW_RANDOM_INIT measures an untrained or partly loaded
model on purpose."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from fvcore.common.config import CfgNode

from hiera_video.models.checkpoint import IncompleteCheckpointError, load_checkpoint
from hiera_video.utils import remote
from hiera_video.utils.errors import MissingInputError

from .checkpoint import find_latest_checkpoint
from .compiled import COMPILE_NOTICE, compile_for_inference
from .distributed import DistributedContext
from .logging import get_logger
from .preemption import PreemptionGuard
from .precision import precision_name
from .tasks import Evaluation, describe_model, get_task


def test_results_dir(cfg: CfgNode) -> str:
    """Where the test stage writes its results: ``OUTPUT_DIR/test``."""
    return str(Path(cfg.OUTPUT_DIR) / "test")


def choose_test_checkpoint(cfg: CfgNode) -> Optional[str]:
    """TEST.CHECKPOINT_FILE_PATH, else the latest checkpoint in OUTPUT_DIR, else None when
    TEST.ALLOW_RANDOM_INIT; otherwise a clear error (a random model's metrics mean nothing)."""
    if cfg.TEST.CHECKPOINT_FILE_PATH:  # a URL is read from its local copy
        return remote.local_copy(cfg.TEST.CHECKPOINT_FILE_PATH, cfg.DATA.REMOTE_TIMEOUT, cfg.DATA.REMOTE_RETRIES)
    latest = find_latest_checkpoint(cfg.OUTPUT_DIR)
    if latest is not None:
        return str(latest)
    if cfg.TEST.ALLOW_RANDOM_INIT:
        return None
    raise MissingInputError(
        f"Nothing to test: TEST.CHECKPOINT_FILE_PATH is empty and {cfg.OUTPUT_DIR}/checkpoints has no "
        "checkpoint. Give a checkpoint, train first, or set TEST.ALLOW_RANDOM_INIT True to measure an "
        "untrained model on purpose."
    )


def load_test_checkpoint(cfg: CfgNode, model: torch.nn.Module, checkpoint: str) -> None:
    """Load ``checkpoint`` into ``model``; a weight it does not give (or a classifier head of another size)
    is an IncompleteCheckpointError naming the file, unless TEST.ALLOW_RANDOM_INIT."""
    try:
        load_checkpoint(model, checkpoint, complete=not cfg.TEST.ALLOW_RANDOM_INIT)
    except IncompleteCheckpointError as error:
        raise IncompleteCheckpointError(
            f"{error} Test it with the config it was trained with (MODEL.NUM_CLASSES, MODEL.MODEL_NAME, "
            "HIERA.*), or set TEST.ALLOW_RANDOM_INIT True to measure such a model on purpose.") from None


def test(cfg: CfgNode, ctx: DistributedContext) -> Evaluation:
    """Load the checkpoint to test and evaluate the TEST.SPLIT list with the task's metric; rank 0 writes
    the results to ``OUTPUT_DIR/test``. SIGTERM keeps the finished batches for the next run."""
    logger = get_logger()
    task = get_task(cfg)
    model = task.build_model()
    checkpoint = choose_test_checkpoint(cfg)
    if checkpoint is None:
        logger.warning("TEST.ALLOW_RANDOM_INIT: testing an untrained model.")
    else:
        load_test_checkpoint(cfg, model, checkpoint)
        logger.info("Testing %s", checkpoint)
    logger.info("Model %s, %s", describe_model(cfg, model), precision_name(cfg.TRAIN.MIXED_PRECISION))
    model = model.to(ctx.device)
    if cfg.TEST.COMPILE:
        logger.info("TEST.COMPILE: %s", COMPILE_NOTICE)
        model = compile_for_inference(model)
    with PreemptionGuard(action="stopping after the current batch to keep the results so far") as preemption:
        return task.evaluate(model, ctx, cfg.TEST.SPLIT, test_results_dir(cfg), checkpoint, preemption=preemption)
