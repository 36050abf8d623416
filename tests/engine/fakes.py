"""Engine test doubles: a tiny Hiera config and an in-memory dataset following the data contract.

Training items are ``{"clip": [C, T, H, W], "label", "index"}``; test items ``{"views": [V, C, T, H, W],
"label", "index"}`` or, for a video that fails, ``{"views": empty, "label", "index", "path", "error"}``
(the contract of :mod:`hiera_video.datasets.clip_dataset`). A class is a bright square
moving right (0), left (1), down (2) or up (3) in noise, so a model can only tell them apart over time.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from hiera_video.config import load_config

NUM_CLASSES = 4
FRAMES, SIZE = 8, 64


def moving_square_clip(label: int, generator: torch.Generator) -> torch.Tensor:
    """A normalized clip [3, T, H, W] of a square moving in the direction of ``label``."""
    clip = torch.randn(3, FRAMES, SIZE, SIZE, generator=generator) * 0.3
    row, col = torch.randint(16, 48, (2,), generator=generator).tolist()
    step_row, step_col = [(0, 3), (0, -3), (3, 0), (-3, 0)][label]
    for t in range(FRAMES):
        r, c = (row + step_row * t) % (SIZE - 8), (col + step_col * t) % (SIZE - 8)
        clip[:, t, r:r + 8, c:c + 8] = 2.0
    return clip


class MovingSquares(Dataset):
    """``size`` videos; training adds augmentation noise from the global torch generator (as real
    augmentations do), so determinism depends on the engine's seeding."""

    def __init__(self, size: int, split: str, num_views: int = 1, failing: tuple[int, ...] = (), augment: bool = True):
        self.size, self.split, self.num_views, self.failing, self.augment = size, split, num_views, failing, augment
        # In training, items of failing indices report a replaced video (the dataset substituted another).
        self.video_paths = [f"video_{i}.mp4" for i in range(size)]
        self.class_names = ["right", "left", "down", "up"]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        label = index % NUM_CLASSES
        clip = moving_square_clip(label, torch.Generator().manual_seed(index))
        if self.split == "train":
            noise = 0.05 * torch.randn(clip.shape) if self.augment else 0.0
            replaced = [(self.video_paths[index], "moov atom not found")] if index in self.failing else []
            return {"clip": clip + noise, "label": label, "index": index, "replaced": replaced}
        if index in self.failing:
            return {"views": torch.empty(0), "label": label, "index": index, "path": self.video_paths[index],
                    "error": "moov atom not found"}
        return {"views": clip.expand(self.num_views, *clip.shape).clone(), "label": label, "index": index}


TINY_OPTS = [
    "MODEL.MODEL_NAME", "hiera_base_16x224", "MODEL.NUM_CLASSES", str(NUM_CLASSES),
    "HIERA.EMBED_DIM", "16", "HIERA.NUM_HEADS", "1", "HIERA.STAGES", "[1, 1, 1, 1]",
    "DATA.NUM_FRAMES", str(FRAMES), "DATA.TRAIN_CROP_SIZE", str(SIZE), "DATA.TEST_CROP_SIZE", str(SIZE),
    "MAE.DECODER_EMBED_DIM", "16", "MAE.DECODER_DEPTH", "1", "MAE.DECODER_NUM_HEADS", "1",
    "TRAIN.BATCH_SIZE", "4", "TEST.BATCH_SIZE", "8", "SOLVER.BASE_LR", "0.05", "SOLVER.WARMUP_EPOCHS", "0.5",
    "SOLVER.MAX_EPOCH", "3", "TRAIN.CHECKPOINT_PERIOD", "1", "TRAIN.EVAL_PERIOD", "0",
    "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1", "DATA_LOADER.NUM_WORKERS", "0",
    "MIXUP.LABEL_SMOOTH_VALUE", "0.0", "LOG_PERIOD", "2",
]


def tiny_cfg(output_dir, *opts: str):
    """The tiny-model config writing to ``output_dir``, with extra ``KEY VALUE`` overrides."""
    return load_config(None, TINY_OPTS + ["OUTPUT_DIR", str(output_dir), *opts])
