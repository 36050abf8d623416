"""Write a tiny ImageNet-style image folder (``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``) for tests.

Each class is a colour: an image of class ``k`` is noise around hue ``k / num_classes`` with a stripe
pattern, in a landscape or portrait size, so resizing and cropping get exercised and a tiny model can
tell the classes apart from any crop.
"""
from __future__ import annotations

import colorsys
import os
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_jpeg


def class_image(label: int, num_classes: int, height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
    """uint8 ``[3, height, width]``: the colour of class ``label`` with stripes and noise."""
    colour = np.array(colorsys.hsv_to_rgb(label / num_classes, 0.8, 0.9)) * 255.0  # [3]
    stripes = 0.75 + 0.25 * np.sin(np.arange(width) / (1.5 + rng.random()))  # [W]
    pixels = colour[:, None, None] * stripes[None, None, :] + rng.normal(0.0, 12.0, (3, height, width))
    return torch.from_numpy(np.clip(pixels, 0, 255).astype(np.uint8))


def write_image_folder(root: str | os.PathLike, num_classes: int = 3, per_class: dict[str, int] | None = None,
                       size: tuple[int, int] = (40, 56), seed: int = 0) -> Path:
    """Write ``per_class[split]`` JPEGs per class into ``root/<split>/class_<k>/`` (default: 2 train and 1 val
    image per class); images alternate between ``size`` (H, W) and its transpose. Returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (per_class or {"train": 2, "val": 1}).items():
        for label in range(num_classes):
            folder = root / split / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                height, width = size if i % 2 == 0 else size[::-1]
                image = class_image(label, num_classes, height, width, rng)
                write_jpeg(image, str(folder / f"{split}_{label}_{i:04d}.JPEG"), quality=90)
    return root
