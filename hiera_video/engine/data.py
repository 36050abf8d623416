"""Data loaders for the engine: samplers that shard over processes and reseed every epoch.

Datasets come from :func:`hiera_video.datasets.build_dataset`; the engine owns the sampler so that a
run is reproducible: the training order depends only on (RNG_SEED, epoch), and DataLoader workers are
seeded from the global generator, which the trainer reseeds at the start of every epoch.
"""
from __future__ import annotations

import os

import torch
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, Dataset

from .distributed import DistributedContext
from .logging import get_logger
from .preemption import ResumableDistributedSampler, ignore_sigterm_in_worker


def per_process_train_batch(cfg: CfgNode, world_size: int) -> int:
    """Videos per loader batch on one process: TRAIN.BATCH_SIZE clips per optimizer step over all
    processes, split over processes, accumulation steps and repeated-augmentation samples."""
    divisor = world_size * cfg.TRAIN.ACCUM_STEPS * cfg.AUG.NUM_SAMPLE
    if cfg.TRAIN.BATCH_SIZE % divisor:
        raise ValueError(
            f"TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} must be divisible by processes ({world_size}) x "
            f"TRAIN.ACCUM_STEPS ({cfg.TRAIN.ACCUM_STEPS}) x AUG.NUM_SAMPLE ({cfg.AUG.NUM_SAMPLE}) = {divisor}."
        )
    return cfg.TRAIN.BATCH_SIZE // divisor


def per_process_test_clips(cfg: CfgNode, world_size: int) -> int:
    """Clips per forward pass on one process (TEST.BATCH_SIZE is over all processes)."""
    return max(1, cfg.TEST.BATCH_SIZE // world_size)


def _build_dataset(cfg: CfgNode, split: str) -> Dataset:
    from hiera_video.datasets import build_dataset

    return build_dataset(cfg, split)


def _collate_train_batch(items: list[dict]) -> dict:
    from hiera_video.datasets.clip_dataset import collate_train_batch

    return collate_train_batch(items)


def _collate_test_batch(items: list[dict]) -> dict:
    from hiera_video.datasets.clip_dataset import collate_test_batch

    return collate_test_batch(items)


def build_train_loader(cfg: CfgNode, ctx: DistributedContext) -> DataLoader:
    """Shuffled, sharded training loader; call ``loader.sampler.set_epoch(epoch)`` every epoch."""
    dataset = _build_dataset(cfg, "train")
    batch_size = per_process_train_batch(cfg, ctx.world_size)
    sampler = ResumableDistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.RNG_SEED, drop_last=True
    )
    if len(sampler) < batch_size:
        raise ValueError(
            f"The training set has {len(dataset)} videos, fewer than one batch of {batch_size} per process "
            f"x {ctx.world_size} processes; lower TRAIN.BATCH_SIZE or add videos."
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATA_LOADER.NUM_WORKERS,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and ctx.device.type == "cuda",
        drop_last=True,
        collate_fn=getattr(dataset, "collate_fn", _collate_train_batch),
        worker_init_fn=ignore_sigterm_in_worker,
    )


def build_test_loader(cfg: CfgNode, ctx: DistributedContext, split: str) -> DataLoader:
    """Multi-view test loader, sharded without shuffling. The sampler pads the last shard with repeated
    videos (the tester counts every video index once) and can skip the batches a preempted run scored."""
    dataset = _build_dataset(cfg, split)
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    sampler = ResumableDistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=False)
    return DataLoader(
        dataset,
        batch_size=max(1, per_process_test_clips(cfg, ctx.world_size) // views),
        sampler=sampler,
        num_workers=cfg.DATA_LOADER.NUM_WORKERS,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and ctx.device.type == "cuda",
        collate_fn=getattr(dataset, "collate_fn", _collate_test_batch),
    )


def leave_cores_to_loader_workers(cfg: CfgNode, device: torch.device) -> None:
    """On CPU, give the model ``torch.get_num_threads() - DATA_LOADER.NUM_WORKERS`` intra-op threads (at
    least one), so that it does not fight the loader workers that decode beside it. GPU runs, and thread
    counts chosen with ``OMP_NUM_THREADS``, are left alone.

    Oversubscribed OpenMP threads wait for each other at every operator: on a 2-core machine with 2 workers,
    testing the demo model ran 2.1x faster end to end with one thread than with two (benchmarks/README.md).
    """
    if device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return
    threads = max(1, torch.get_num_threads() - cfg.DATA_LOADER.NUM_WORKERS)
    if threads < torch.get_num_threads():
        get_logger().info(
            "Model on %d CPU thread(s), leaving the other cores to %d loader workers (set OMP_NUM_THREADS to "
            "choose).", threads, cfg.DATA_LOADER.NUM_WORKERS)
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
