"""Build datasets and data loaders from the config.

``build_dataset(cfg, split)`` picks the reader from ``TRAIN.DATASET`` (train split) or ``TEST.DATASET``
(val / test) in :data:`DATASETS` ("kinetics", "ssv2", "ava"; other readers add themselves with
:func:`register_dataset`). ``build_loader(cfg, split)`` wraps it in a DataLoader:

- distributed (``torch.distributed`` initialized): a ``DistributedSampler`` (shuffled for training; the
  engine calls ``loader.sampler.set_epoch``). In testing it pads the last shards with repeated videos:
  deduplicate predictions by ``batch["index"]``.
- batch size per process: ``TRAIN.BATCH_SIZE / world_size`` clips in training; in testing
  ``TEST.BATCH_SIZE`` counts views, so a batch holds ``max(1, TEST.BATCH_SIZE / (world_size * V))`` videos.
- ``DATA_LOADER.NUM_WORKERS`` workers (persistent, so each keeps its decode watchdog),
  ``DATA_LOADER.PIN_MEMORY`` when CUDA is available, and the collate functions of
  :mod:`hiera_video.datasets.clip_dataset`.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from hiera_video.datasets.clip_dataset import collate_test_batch, collate_train_batch
from hiera_video.datasets.kinetics import KineticsDataset
from hiera_video.datasets.ssv2 import SSv2Dataset



def _ava_dataset(cfg, split: str, mode: Optional[str] = None):
    """AVA keyframes (:class:`hiera_video.datasets.ava.AvaDataset`), imported on first use."""
    from hiera_video.datasets.ava import AvaDataset

    return AvaDataset(cfg, split, mode=mode)


DATASETS: dict[str, Callable] = {"kinetics": KineticsDataset, "ssv2": SSv2Dataset, "ava": _ava_dataset}


def register_dataset(name: str, builder: Callable) -> None:
    """Make ``builder(cfg, split, mode=None)`` available as ``TRAIN.DATASET`` / ``TEST.DATASET = name``."""
    DATASETS[name] = builder


def build_dataset(cfg, split: str, mode: Optional[str] = None):
    """The dataset of ``split`` ("train", "val", "test"); ``mode`` "train"/"test" overrides the default."""
    name = (cfg.TRAIN.DATASET if split == "train" else cfg.TEST.DATASET).lower()
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; TRAIN.DATASET / TEST.DATASET must be one of {sorted(DATASETS)}")
    return DATASETS[name](cfg, split, mode=mode)


def _process_group() -> tuple[int, int]:
    """(world size, rank) of the initialized process group, or (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def build_loader(cfg, split: str, mode: Optional[str] = None, dataset=None,
                 world_size: Optional[int] = None, rank: Optional[int] = None) -> DataLoader:
    """A DataLoader over ``dataset`` (default ``build_dataset(cfg, split, mode)``); see the module docstring.

    ``world_size`` / ``rank`` default to the initialized process group's (1 / 0 without one).
    """
    dataset = dataset if dataset is not None else build_dataset(cfg, split, mode)
    train = dataset.mode == "train"
    group_size, group_rank = _process_group()
    world_size = group_size if world_size is None else world_size
    rank = group_rank if rank is None else rank
    if world_size > 1:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=train, seed=cfg.RNG_SEED)
    else:
        sampler = RandomSampler(dataset) if train else SequentialSampler(dataset)
    if train:
        if cfg.TRAIN.BATCH_SIZE % world_size:
            raise ValueError(f"TRAIN.BATCH_SIZE={cfg.TRAIN.BATCH_SIZE} is not divisible by {world_size} processes")
        batch_size = cfg.TRAIN.BATCH_SIZE // world_size
    else:
        views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
        batch_size = max(1, cfg.TEST.BATCH_SIZE // (world_size * views))
    workers = cfg.DATA_LOADER.NUM_WORKERS
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        drop_last=train,
        collate_fn=collate_train_batch if train else collate_test_batch,
        persistent_workers=workers > 0,
    )
