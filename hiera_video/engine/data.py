"""Data loaders: the one place a DataLoader is built, with samplers that shard over processes.

Datasets come from :func:`hiera_video.datasets.build_dataset`, batches are the types of
:mod:`hiera_video.datasets.batches` (the dataset's ``collate_fn``). TRAIN.BATCH_SIZE and TEST.BATCH_SIZE
count clips over all processes (:func:`per_process_train_batch`, :func:`per_process_test_clips`). Loader
workers ignore SIGTERM: a cluster signals the whole process group, and the main process decides when to
stop.

The engine owns the sampler so that a run is reproducible: the training order depends only on (RNG_SEED,
epoch), and every training item draws its augmentation from generators seeded by (RNG_SEED, epoch, video
index) alone. The clips of an epoch therefore do not depend on the number of loader workers, on which
worker loads an item, or on a restart in the middle of the epoch.
"""
from __future__ import annotations

import contextlib
import os
import random
from typing import Any, Iterator

import numpy as np
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


@contextlib.contextmanager
def seeded_generators(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's CPU generators with ``seed`` inside the block; restore their
    states after it (the caller's random stream is left as it was)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def item_seed(base_seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of video ``index`` in ``epoch``."""
    return (base_seed * 1_000_003 + epoch) * 1_000_033 + index


class SeededTrainSampler(ResumableDistributedSampler):
    """Yields ``(index, seed)``: the shuffled, sharded indices of the epoch, each with its :func:`item_seed`."""

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        return ((index, item_seed(self.seed, self.epoch, index)) for index in super().__iter__())


class SeededItems(Dataset):
    """A training dataset indexed by ``(index, seed)``: each item is made under :func:`seeded_generators`.
    Other attributes (``class_names``, ``collate_fn``, ...) are the wrapped dataset's."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with seeded_generators(seed):
            return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def build_train_loader(cfg: CfgNode, ctx: DistributedContext) -> DataLoader:
    """Shuffled, sharded training loader; call ``loader.sampler.set_epoch(epoch)`` every epoch."""
    dataset = _build_dataset(cfg, "train")
    batch_size = per_process_train_batch(cfg, ctx.world_size)
    sampler = SeededTrainSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.RNG_SEED, drop_last=True
    )
    if len(sampler) < batch_size:
        raise ValueError(
            f"The training set has {len(dataset)} videos, fewer than one batch of {batch_size} per process "
            f"x {ctx.world_size} processes; lower TRAIN.BATCH_SIZE or add videos."
        )
    return DataLoader(
        SeededItems(dataset),
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
        worker_init_fn=ignore_sigterm_in_worker,
    )


def cap_loader_workers(cfg: CfgNode) -> None:
    """Lower DATA_LOADER.NUM_WORKERS to the cores this process may use (the machine's usable cores shared
    by the processes torchrun started on it), with a log line; more workers than cores only add waiting."""
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = max(1, len(os.sched_getaffinity(0)) // processes_here)
    if cfg.DATA_LOADER.NUM_WORKERS > cores:
        get_logger().info("DATA_LOADER.NUM_WORKERS %d lowered to %d: this process has %d CPU core(s).",
                          cfg.DATA_LOADER.NUM_WORKERS, cores, cores)
        cfg.DATA_LOADER.NUM_WORKERS = cores


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
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
