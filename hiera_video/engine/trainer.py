"""Training: ``train(cfg, ctx)`` runs epochs of ``train_one_epoch`` with checkpoints and auto-resume.

Every epoch starts by reseeding all generators from (RNG_SEED, epoch, rank) and the sampler from
(RNG_SEED, epoch); every training item draws its augmentation from (RNG_SEED, epoch, video). A run resumed
from a checkpoint continues exactly as an uninterrupted run would, whatever DATA_LOADER.NUM_WORKERS.
SIGTERM stops training after the current optimizer step with a mid-epoch checkpoint (see :mod:`preemption`);
a newest checkpoint that does not load is reported and the one before it is used.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from fvcore.common.config import CfgNode
from torch.nn.parallel import DistributedDataParallel

from hiera_video.datasets.clip_dataset import FailureTracker
from hiera_video.utils import remote
from hiera_video.utils.errors import UserError

from .checkpoint import (
    claim_output_dir, find_latest_checkpoint, resume_from_latest_good_checkpoint, save_checkpoint, unwrap_model,
)
from .data import seed_everything
from .distributed import DistributedContext, all_gather_objects, all_reduce_mean, barrier
from .logging import StatsWriter, get_logger, progress
from .meters import AverageMeter
from .optim import WarmupCosineSchedule, build_optimizer
from .precision import autocast_context, build_grad_scaler, precision_name
from .preemption import (
    JobPreempted, PreemptionGuard, capture_rng_state, compatible_resume_state, restore_rng_state, resume_position,
)
from .tasks import Evaluation, Task, describe_model, get_task


class NonFiniteLossError(UserError, FloatingPointError):
    """The training loss became NaN or infinite (the recipe diverged: lr, warmup, clipping)."""


@dataclass
class TrainResult:
    """What a training run ends with: the last checkpoint, the last epoch's summary (mean loss, lr, clips/s
    and the task's averaged statistics) and the last validation (None when none ran)."""

    checkpoint: Optional[Path]
    epochs_done: int
    last_epoch: dict[str, Any] = field(default_factory=dict)
    validation: Optional[Evaluation] = None


def epoch_seed(base_seed: int, epoch: int, rank: int) -> int:
    """The seed of all generators for one epoch on one process."""
    return base_seed + 100_003 * epoch + 1_009 * rank


def initialize_model(cfg: CfgNode, task: Task, ctx: DistributedContext) -> torch.nn.Module:
    """Build the task's model on the device, from TRAIN.CHECKPOINT_FILE_PATH weights when given."""
    model = task.build_model()
    if cfg.TRAIN.CHECKPOINT_FILE_PATH:
        path = remote.local_copy(cfg.TRAIN.CHECKPOINT_FILE_PATH, cfg.DATA.REMOTE_TIMEOUT, cfg.DATA.REMOTE_RETRIES)
        task.load_pretrained(model, path)  # a URL is read from its local copy
        get_logger().info("Initialized weights from %s", cfg.TRAIN.CHECKPOINT_FILE_PATH)
    if cfg.MODEL.ACT_CHECKPOINT:
        model.set_activation_checkpointing(True)
    return model.to(ctx.device)


def read_scalars(loss: torch.Tensor, stats: dict) -> tuple[float, dict[str, float]]:
    """The loss and a step's statistics as Python floats, copied to the host together: the iteration's one
    host sync, made after backward was queued."""
    values = torch.stack([loss.detach().float(), *(torch.as_tensor(v, dtype=torch.float32, device=loss.device)
                                                   for v in stats.values())]).tolist()
    return values[0], dict(zip(stats, values[1:]))


def train_one_epoch(
    cfg: CfgNode,
    task: Task,
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scaler: Optional[torch.amp.GradScaler],
    schedule: WarmupCosineSchedule,
    epoch: int,
    ctx: DistributedContext,
    stats: StatsWriter,
    failures: FailureTracker,
    preemption: Optional[PreemptionGuard] = None,
    resume_state: Optional[dict] = None,
) -> dict:
    """One pass over ``loader``; returns the epoch's mean loss, last lr and throughput.

    Videos the dataset replaced because they failed to decode go to ``failures``, which stops the job
    past TRAIN.MAX_FAILED_FRACTION. A ``resume_state`` of this epoch (from a preempted run) skips the
    iterations already done and restores the random generators; a stop asked through ``preemption`` raises
    JobPreempted after the next optimizer step.
    """
    model.train()
    accum_steps = cfg.TRAIN.ACCUM_STEPS
    num_iters = len(loader)
    first_iter = resume_position(resume_state, epoch)
    if first_iter:
        loader.sampler.skip_next_pass(first_iter * loader.batch_size)
    loss_meter = AverageMeter()
    stat_meters: dict[str, AverageMeter] = {}
    lr = schedule.apply(optimizer, epoch)
    start = time.perf_counter()
    clips_seen = 0
    batches = iter(loader)  # draws the loader workers' seed from the generators seeded for this epoch
    if first_iter and ctx.rank < len(resume_state["rng"]):
        restore_rng_state(resume_state["rng"][ctx.rank])
    bar = progress(batches, ctx.is_main, desc=f"epoch {epoch + 1}/{cfg.SOLVER.MAX_EPOCH}", total=num_iters,
                   initial=first_iter)
    for it, batch in enumerate(bar, start=first_iter):
        if it % accum_steps == 0:
            lr = schedule.apply(optimizer, epoch + it / num_iters)
        steps_now = (it + 1) % accum_steps == 0 or it + 1 == num_iters
        # Gradients are all-reduced only on the micro-batch that steps the optimizer.
        sync = model.no_sync() if isinstance(model, DistributedDataParallel) and not steps_now else contextlib.nullcontext()
        with sync:
            with autocast_context(cfg.TRAIN.MIXED_PRECISION, ctx.device):
                step = task.training_step(model, batch, ctx.device)
            scaled = step.loss / accum_steps
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        loss_value, step_stats = read_scalars(step.loss, step.stats)
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                f"Loss is {loss_value} at epoch {epoch + 1}, iteration {it + 1}: lower SOLVER.BASE_LR, "
                "raise SOLVER.WARMUP_EPOCHS or set SOLVER.CLIP_GRAD_L2NORM."
            )
        if steps_now:
            if cfg.SOLVER.CLIP_GRAD_L2NORM > 0:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.SOLVER.CLIP_GRAD_L2NORM)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        batch_clips = step.num_clips * ctx.world_size
        clips_seen += batch_clips
        loss_meter.update(loss_value, batch_clips)
        for name, value in step_stats.items():
            stat_meters.setdefault(name, AverageMeter()).update(value, batch_clips)
        failures.update(step.replaced)
        clips_per_s = clips_seen / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", clips_s=f"{clips_per_s:.3g}")
        if (it + 1) % cfg.LOG_PERIOD == 0 or it + 1 == num_iters:
            record = {"mode": "train_iter", "epoch": epoch + 1, "iter": it + 1, "loss": loss_value, "lr": lr,
                      "clips_per_s": clips_per_s, **step_stats}
            stats.write(record, step=epoch * num_iters + it + 1)
            if bar.disable:
                eta = (num_iters - it - 1) * (time.perf_counter() - start) / (it + 1)
                get_logger().info("epoch %d iter %d/%d loss %.4f lr %.3e %.3g clips/s eta %.0fs",
                                  epoch + 1, it + 1, num_iters, loss_value, lr, clips_per_s, eta)
        if steps_now and it + 1 < num_iters and preemption is not None and preemption.should_stop():
            raise JobPreempted(epoch, it + 1)
    summary = {"loss": all_reduce_mean(torch.tensor(loss_meter.mean)).item(), "lr": lr,
               "clips_per_s": clips_seen / (time.perf_counter() - start)}
    for name, meter in stat_meters.items():
        summary[name] = all_reduce_mean(torch.tensor(meter.mean)).item()
    return summary


def _log_failed_videos(tracker: FailureTracker, epoch: int) -> None:
    """Warn with the failure report when training videos failed to decode so far (counted once each)."""
    if tracker.failures:
        get_logger().warning("after epoch %d: %s", epoch + 1, tracker.report())


def _evaluation_due(cfg: CfgNode, task: Task, epoch: int) -> bool:
    """Whether to run validation after 0-based ``epoch`` (every TRAIN.EVAL_PERIOD epochs and at the end)."""
    if cfg.TRAIN.EVAL_PERIOD <= 0 or not task.has_test_stage:
        return False
    return (epoch + 1) % cfg.TRAIN.EVAL_PERIOD == 0 or epoch + 1 == cfg.SOLVER.MAX_EPOCH


def _validate(task: Task, model: torch.nn.Module, ctx: DistributedContext, stats: StatsWriter, epoch: int,
              checkpoint: Optional[Path]) -> Evaluation:
    """The task's evaluation of the "val" list (files in OUTPUT_DIR/val, naming ``checkpoint``: the weights
    just saved); its numeric metrics go to the stats as a "val" record, its summary to the log."""
    evaluation = task.evaluate(unwrap_model(model), ctx, "val", str(Path(task.cfg.OUTPUT_DIR) / "val"),
                               str(checkpoint) if checkpoint is not None else None)
    record = {k: v for k, v in evaluation.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    stats.write({"mode": "val", "epoch": epoch + 1, **record}, step=epoch + 1)
    get_logger().info("epoch %d validation: %s", epoch + 1,
                      ", ".join(f"{k} {v:.4g}" for k, v in evaluation.summary.items()))
    return evaluation


def _save_preempted_checkpoint(cfg: CfgNode, ctx: DistributedContext, stop: JobPreempted, model: torch.nn.Module,
                               optimizer: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler],
                               class_names: Optional[list[str]], batch_size: int) -> None:
    """Write the mid-epoch checkpoint of a preempted run (rank 0, with every rank's generators)."""
    rng_per_rank = all_gather_objects(capture_rng_state())
    if ctx.is_main:
        resume_state = {"epoch": stop.epoch, "iteration": stop.iterations, "rng": rng_per_rank,
                        "world_size": ctx.world_size, "batch_size": batch_size}
        path = save_checkpoint(cfg.OUTPUT_DIR, stop.epoch, model, optimizer, scaler, cfg.dump(), class_names,
                               resume_state)
        get_logger().warning("Saved %s (%s); run the same command again to resume.", path, stop)
    barrier()


def train(cfg: CfgNode, ctx: DistributedContext) -> TrainResult:
    """Train ``cfg.TASK`` for SOLVER.MAX_EPOCH epochs, resuming when allowed."""
    logger = get_logger()
    task = get_task(cfg)
    if ctx.is_main:
        claim_output_dir(cfg.OUTPUT_DIR)  # a second live job on this OUTPUT_DIR stops here, before any work
    latest = find_latest_checkpoint(cfg.OUTPUT_DIR) if cfg.TRAIN.AUTO_RESUME else None
    model = initialize_model(cfg, task, ctx) if latest is None else task.build_model().to(ctx.device)
    optimizer = build_optimizer(model, cfg)
    scaler = build_grad_scaler(cfg.TRAIN.MIXED_PRECISION, ctx.device)
    start_epoch, resume_state = 0, None
    if latest is not None:
        latest, start_epoch, resume_state = resume_from_latest_good_checkpoint(cfg.OUTPUT_DIR, model, optimizer,
                                                                               scaler)
        logger.info("Resuming from %s (epoch %d, iteration %d)", latest, start_epoch + 1,
                    resume_position(resume_state, start_epoch) + 1)
    if ctx.world_size > 1:
        model = DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
    loader = task.build_train_loader(ctx)
    resume_state = compatible_resume_state(resume_state, ctx.world_size, loader.batch_size)
    class_names = getattr(loader.dataset, "class_names", None)
    schedule = WarmupCosineSchedule(cfg)
    stats = StatsWriter(cfg.OUTPUT_DIR, ctx.is_main)
    failures = FailureTracker(getattr(loader.dataset, "num_videos", len(loader.dataset)),
                              cfg.TRAIN.MAX_FAILED_FRACTION)
    if start_epoch >= cfg.SOLVER.MAX_EPOCH:
        logger.info("Training is done: %s is of the last epoch (%d).", latest, cfg.SOLVER.MAX_EPOCH)
    else:
        logger.info("Training %s (%s, %s) for epochs %d..%d on %d process(es), %d iterations per epoch",
                    describe_model(cfg, unwrap_model(model)), cfg.TASK, precision_name(cfg.TRAIN.MIXED_PRECISION),
                    start_epoch + 1, cfg.SOLVER.MAX_EPOCH, ctx.world_size, len(loader))
        if cfg.SOLVER.WARMUP_EPOCHS >= cfg.SOLVER.MAX_EPOCH:
            logger.warning("SOLVER.WARMUP_EPOCHS %g >= SOLVER.MAX_EPOCH %d: the lr never leaves its warmup.",
                           cfg.SOLVER.WARMUP_EPOCHS, cfg.SOLVER.MAX_EPOCH)
    result = TrainResult(latest, start_epoch)
    try:
        with PreemptionGuard() as preemption:
            for epoch in range(start_epoch, cfg.SOLVER.MAX_EPOCH):
                seed_everything(epoch_seed(cfg.RNG_SEED, epoch, ctx.rank))
                loader.sampler.set_epoch(epoch)
                try:
                    summary = train_one_epoch(cfg, task, model, loader, optimizer, scaler, schedule, epoch, ctx,
                                              stats, failures, preemption, resume_state)
                except JobPreempted as stop:
                    _save_preempted_checkpoint(cfg, ctx, stop, model, optimizer, scaler, class_names,
                                               loader.batch_size)
                    raise
                result.epochs_done, result.last_epoch = epoch + 1, summary
                stats.write({"mode": "train_epoch", "epoch": epoch + 1, **summary}, step=epoch + 1)
                logger.info("epoch %d/%d: %s", epoch + 1, cfg.SOLVER.MAX_EPOCH,
                            ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
                _log_failed_videos(failures, epoch)
                stop_now = preemption.should_stop()  # a preempted job keeps the epoch it just finished
                saves = (epoch + 1) % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or epoch + 1 == cfg.SOLVER.MAX_EPOCH or stop_now
                if saves:
                    if ctx.is_main:
                        result.checkpoint = save_checkpoint(cfg.OUTPUT_DIR, epoch, model, optimizer, scaler,
                                                            cfg.dump(), class_names)
                        logger.info("Saved %s", result.checkpoint)
                    result.checkpoint = all_gather_objects(result.checkpoint)[0]  # rank 0's path, on every rank
                if stop_now:
                    raise JobPreempted(epoch + 1, 0)
                if _evaluation_due(cfg, task, epoch):
                    result.validation = _validate(task, model, ctx, stats, epoch, result.checkpoint if saves else None)
    finally:
        stats.close()
    return result
