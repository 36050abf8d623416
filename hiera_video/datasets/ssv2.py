"""Something-Something-v2 from the official JSON files, as WebM videos or PySlowFast frame lists.

``DATA.PATH_TO_DATA_DIR`` holds ``something-something-v2-labels.json``, ``-train.json`` and
``-validation.json`` (the val and test splits both read ``-validation.json``; the official test split has
no labels). Frames come from:

- PySlowFast frame lists when ``{train,val}.csv`` with the header ``original_vido_id video_id frame_id
  path labels`` is in ``DATA.PATH_TO_DATA_DIR``: frame paths joined to ``DATA.PATH_PREFIX``, matched to
  the JSON by video id. Images are read as RGB; set ``DATA.REVERSE_INPUT_CHANNEL`` to feed BGR (what
  PySlowFast's cv2 reading gives) to a model trained that way. A JSON video without frames fails like an
  undecodable video (counted, never dropped).
- otherwise the videos ``DATA.PATH_PREFIX/{id}.webm``.

Sampling is segment-based (one frame per segment of ``DATA.NUM_FRAMES``; random in training, middle in
testing) and the horizontal flip is always off (labels such as "pushing from left to right"). The paper
tests SSv2 with 3 spatial x 1 temporal views (``TEST.NUM_ENSEMBLE_VIEWS 1``).
"""
from __future__ import annotations

import os
from typing import Optional

from hiera_video.datasets.clip_dataset import VideoClipDataset
from hiera_video.datasets.list_files import (
    VideoEntry,
    is_frame_list,
    read_class_names,
    read_frame_list,
    read_ssv2_annotations,
)
from hiera_video.utils.errors import MissingInputError

_ANNOTATIONS = {"train": "something-something-v2-train.json", "val": "something-something-v2-validation.json",
                "test": "something-something-v2-validation.json"}
LABELS_FILE = "something-something-v2-labels.json"


def _require(path: str) -> str:
    if not os.path.isfile(path):
        raise MissingInputError(f"{path} not found (DATA.PATH_TO_DATA_DIR); see datasets/ssv2/README.md")
    return path


class SSv2Dataset(VideoClipDataset):
    """Something-Something-v2 clips; ``mode`` defaults to ``"train"`` for the train split, else ``"test"``."""

    def __init__(self, cfg, split: str, mode: Optional[str] = None, decode_once: bool = True):
        if split not in _ANNOTATIONS:
            raise ValueError(f"split must be one of {sorted(_ANNOTATIONS)}, got {split!r}")
        data_dir, prefix = cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX
        class_names = read_class_names(_require(os.path.join(data_dir, LABELS_FILE)))
        pairs = read_ssv2_annotations(_require(os.path.join(data_dir, _ANNOTATIONS[split])), class_names)
        frame_list = os.path.join(data_dir, "train.csv" if split == "train" else "val.csv")
        if os.path.isfile(frame_list) and is_frame_list(frame_list):
            frames = read_frame_list(frame_list, prefix)
            entries = [VideoEntry(os.path.join(prefix, video_id), label, frame_list, frames.get(video_id, []))
                       for video_id, label in pairs]
        else:
            entries = [VideoEntry(os.path.join(prefix, f"{video_id}.webm"), label) for video_id, label in pairs]
        self.split = split
        super().__init__(cfg, entries, class_names, mode or ("train" if split == "train" else "test"),
                         temporal_sampling="segment", flip=False, decode_once=decode_once)
