"""Datasets by name: ``build_dataset(cfg, split)`` picks the reader of ``TRAIN.DATASET`` (train split) or
``TEST.DATASET`` (val / test) in :data:`DATASETS` ("kinetics", "ssv2", "ava", "imagenet"); other readers add
themselves with :func:`register_dataset`. The engine's loaders (:mod:`hiera_video.engine.data`) wrap them.
"""
from __future__ import annotations

from typing import Callable, Optional

from hiera_video.datasets.kinetics import KineticsDataset
from hiera_video.datasets.ssv2 import SSv2Dataset


def _ava_dataset(cfg, split: str, mode: Optional[str] = None):
    """AVA keyframes (:class:`hiera_video.datasets.ava.AvaDataset`), imported on first use."""
    from hiera_video.datasets.ava import AvaDataset

    return AvaDataset(cfg, split, mode=mode)


def _image_folder_dataset(cfg, split: str, mode: Optional[str] = None):
    """ImageNet-style image folders (:class:`hiera_video.datasets.image_folder.ImageFolderDataset`), imported
    on first use."""
    from hiera_video.datasets.image_folder import ImageFolderDataset

    return ImageFolderDataset(cfg, split, mode=mode)


DATASETS: dict[str, Callable] = {"kinetics": KineticsDataset, "ssv2": SSv2Dataset, "ava": _ava_dataset,
                                 "imagenet": _image_folder_dataset}


def register_dataset(name: str, builder: Callable) -> None:
    """Make ``builder(cfg, split, mode=None)`` available as ``TRAIN.DATASET`` / ``TEST.DATASET = name``."""
    DATASETS[name] = builder


def build_dataset(cfg, split: str, mode: Optional[str] = None):
    """The dataset of ``split`` ("train", "val", "test"); ``mode`` "train"/"test" overrides the default.
    ``DATA.FORMAT shards`` reads the split's shards (:mod:`hiera_video.datasets.shard_dataset`) instead."""
    name = (cfg.TRAIN.DATASET if split == "train" else cfg.TEST.DATASET).lower()
    if cfg.DATA.FORMAT == "shards":  # tools/make_shards.py's tar shards instead of the listed files
        from hiera_video.datasets.shard_dataset import build_shard_dataset

        return build_shard_dataset(cfg, split, name, mode=mode)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; TRAIN.DATASET / TEST.DATASET must be one of {sorted(DATASETS)}")
    return DATASETS[name](cfg, split, mode=mode)
