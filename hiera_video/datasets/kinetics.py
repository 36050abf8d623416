"""Kinetics-400/600/700 from PySlowFast list files or the official annotation CSVs.

The list file for a split is ``DATA.PATH_TO_DATA_DIR/{split}.csv`` (``val`` also accepts the official
``validate.csv``). Its format is detected from its first line:

- PySlowFast list (no header, ``path label``): paths joined to ``DATA.PATH_PREFIX``; class names from
  ``classids.json`` or ``labels.txt`` beside the list when present, else ``"0"``, ``"1"``, ...
  (``MODEL.NUM_CLASSES`` of them).
- Official CSV (``label,youtube_id,time_start,time_end,split``): class index = position in the sorted
  class names of the training CSV (``train.csv`` in the same folder; this file when absent); the file of
  a row is ``DATA.PATH_PREFIX/`` + ``DATA.VIDEO_NAME_FORMAT`` (default
  ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4``; fields ``label``, ``youtube_id``, ``time_start``,
  ``time_end``, ``split``; e.g. ``{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` for
  per-class folders). A missing ``.mp4`` is also looked for as ``.webm`` / ``.mkv``.

Items: see :mod:`hiera_video.datasets.clip_dataset`.
"""
from __future__ import annotations

import os
from typing import Optional

from hiera_video.datasets.clip_dataset import VideoClipDataset
from hiera_video.datasets.list_files import (
    ListFileError,
    dataset_class_names,
    is_kinetics_annotation_csv,
    kinetics_entries,
    read_kinetics_annotations,
    read_path_label_list,
)
from hiera_video.utils import remote
from hiera_video.utils.errors import MissingInputError

_SPLIT_FILES = {"train": ("train.csv",), "val": ("val.csv", "validate.csv"), "test": ("test.csv",)}
# What a list folder on a URL (DATA.PATH_TO_DATA_DIR http(s)://, s3://, ...) is copied for.
_LIST_FOLDER_FILES = ("train.csv", "val.csv", "validate.csv", "test.csv", "classids.json", "labels.txt")


def kinetics_list_path(data_dir: str, split: str, shown_dir: Optional[str] = None) -> str:
    """The list file of ``split`` in ``data_dir``; a clear error naming ``shown_dir`` (default ``data_dir``:
    the folder or URL the user gave) when none exists."""
    if split not in _SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(_SPLIT_FILES)}, got {split!r}")
    for name in _SPLIT_FILES[split]:
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise MissingInputError(
        f"no {' or '.join(_SPLIT_FILES[split])} in DATA.PATH_TO_DATA_DIR={shown_dir or data_dir!r}; see "
        "datasets/README.md"
    )


class KineticsDataset(VideoClipDataset):
    """Kinetics clips; ``mode`` defaults to ``"train"`` for the train split and ``"test"`` otherwise."""

    def __init__(self, cfg, split: str, mode: Optional[str] = None, decode_once: bool = True):
        data = cfg.DATA
        data_dir = remote.local_folder(data.PATH_TO_DATA_DIR, _LIST_FOLDER_FILES, data.REMOTE_TIMEOUT,
                                       data.REMOTE_RETRIES)
        list_path = kinetics_list_path(data_dir, split, data.PATH_TO_DATA_DIR)
        if is_kinetics_annotation_csv(list_path):
            train_csv = os.path.join(data_dir, "train.csv")
            class_source = train_csv if os.path.isfile(train_csv) else list_path
            class_names = sorted({row["label"] for row in read_kinetics_annotations(class_source)})
            if len(class_names) != cfg.MODEL.NUM_CLASSES:
                raise ListFileError(class_source, None, f"{len(class_names)} classes, but MODEL.NUM_CLASSES is "
                                    f"{cfg.MODEL.NUM_CLASSES}: use the list of the whole dataset, or set "
                                    f"MODEL.NUM_CLASSES {len(class_names)}")
            rows = read_kinetics_annotations(list_path)
            entries = kinetics_entries(rows, class_names, list_path, data.PATH_PREFIX, data.VIDEO_NAME_FORMAT)
        else:
            num_classes = cfg.MODEL.NUM_CLASSES
            entries = read_path_label_list(list_path, data.PATH_PREFIX, data.PATH_LABEL_SEPARATOR, num_classes)
            class_names = dataset_class_names(data_dir, num_classes)
        self.split, self.list_path = split, list_path
        super().__init__(cfg, entries, class_names, mode or ("train" if split == "train" else "test"),
                         temporal_sampling="clip", decode_once=decode_once)
