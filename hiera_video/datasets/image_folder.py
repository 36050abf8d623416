"""ImageNet-style image folders (``TRAIN.DATASET`` / ``TEST.DATASET`` ``imagenet``) for the image Hiera models.

Layout: ``DATA.PATH_TO_DATA_DIR/{train,val,test}/<class>/<image>`` (``.JPEG`` as ImageNet ships them, or any
extension torchvision's ``ImageFolder`` accepts). Class index = position of the folder name among the sorted
folder names of ``train/``, as ``torchvision.datasets.ImageFolder`` numbers them; every split is numbered
by ``train/``'s classes, so a val folder cannot shift the labels.

Items follow :mod:`hiera_video.datasets.clip_dataset`'s contract with images in place of clips:

- training: ``{"clip": float [C, H, W], "label", "index", "replaced"}``: the video training transform on a
  one-frame clip (RandAugment ``AUG.AA_TYPE`` on the decoded image, random resized crop of
  ``DATA.TRAIN_CROP_SIZE`` with the ``DATA.TRAIN_JITTER_*_RELATIVE`` ranges, flip, normalization with
  ``DATA.MEAN`` / ``DATA.STD``, random erasing ``AUG.RE_*``); mixup / cutmix are the task's (``MIXUP.*``).
- testing: ``{"views": float [S, C, H, W], ...}`` with ``S = TEST.NUM_SPATIAL_CROPS``; one crop is the
  usual single-view protocol: short side ``round(crop / 0.875)`` (256 for 224), then the centre crop.

An image that cannot be decoded is handled as a bad video is: replaced and listed in ``replaced`` in
training (counted against ``TRAIN.MAX_FAILED_FRACTION``), listed in ``ViewBatch.failed`` in testing.
"""
from __future__ import annotations

import os
import re
from typing import Optional

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.io import ImageReadMode, decode_image

from hiera_video.datasets.clip_dataset import VideoClipDataset
from hiera_video.datasets.decoding import VideoDecodeError
from hiera_video.datasets.list_files import VideoEntry
from hiera_video.datasets.transforms import spatial_views
from hiera_video.utils.errors import MissingInputError, UserError

# torchvision starts its decode errors with the C++ function and source line ("decode_jpeg, /.../x.cpp:171, ").
_TORCHVISION_SOURCE = re.compile(r"^\w+, \S+\.cpp:\d+, ")
# Single-view evaluation resizes the short side to crop / 0.875 (256 for 224) before the centre crop.
CROP_FRACTION = 0.875


class ImageFolderError(UserError, ValueError):
    """An image folder that does not fit the config: an empty class folder, another number of classes
    than MODEL.NUM_CLASSES, settings only videos have."""


def split_folder(data_dir: str, split: str) -> str:
    """``data_dir/split``, which must be a folder (a clear error naming it otherwise)."""
    folder = os.path.join(data_dir, split)
    if not os.path.isdir(folder):
        raise MissingInputError(
            f"no {split}/ folder in DATA.PATH_TO_DATA_DIR={data_dir!r}: an image dataset holds "
            f"{split}/<class>/<image>.JPEG (ImageNet's layout)")
    return folder


def image_class_names(train_folder: str) -> list[str]:
    """The sorted class folder names of ``train_folder`` (index = position), as ImageFolder finds them."""
    try:
        names, _ = find_classes(train_folder)
    except FileNotFoundError:
        raise ImageFolderError(f"{train_folder} has no class folders; put each class's images in "
                               f"{train_folder}/<class>/") from None
    return names


def image_entries(folder: str, class_names: list[str]) -> list[VideoEntry]:
    """(path, label) of every image under ``folder/<class>/``, labelled by ``class_names``' order."""
    class_to_index = {name: index for index, name in enumerate(class_names)}
    try:
        samples = make_dataset(folder, class_to_index, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as error:  # a class folder missing or without images
        raise ImageFolderError(f"{folder}: {error}") from None
    return [VideoEntry(path, label) for path, label in samples]


def read_image(path: str) -> torch.Tensor:
    """uint8 RGB ``[1, H, W, C]`` (a one-frame clip); VideoDecodeError naming the file when it does not decode."""
    try:
        image = decode_image(path, mode=ImageReadMode.RGB)  # [C, H, W]
    except (RuntimeError, OSError, ValueError) as error:
        detail = _TORCHVISION_SOURCE.sub("", str(error))
        raise VideoDecodeError(path, f"cannot decode image ({detail})") from None
    return image.permute(1, 2, 0).unsqueeze(0)  # [C, H, W] -> [1, H, W, C]


class ImageFolderDataset(VideoClipDataset):
    """Images of ``DATA.PATH_TO_DATA_DIR/<split>/<class>/``; ``mode`` defaults to ``"train"`` for the train
    split and ``"test"`` otherwise. See the module docstring for items and augmentation."""

    def __init__(self, cfg, split: str, mode: Optional[str] = None):
        data_dir = cfg.DATA.PATH_TO_DATA_DIR
        class_names = image_class_names(split_folder(data_dir, "train"))
        self.split, self.root = split, split_folder(data_dir, split)
        entries = image_entries(self.root, class_names)
        if len(class_names) != cfg.MODEL.NUM_CLASSES:
            raise ImageFolderError(
                f"{os.path.join(data_dir, 'train')} has {len(class_names)} class folders, but MODEL.NUM_CLASSES "
                f"is {cfg.MODEL.NUM_CLASSES}: set MODEL.NUM_CLASSES {len(class_names)}")
        super().__init__(cfg, entries, class_names, mode or ("train" if split == "train" else "test"))
        _check_image_settings(cfg, self.mode)

    def load_train_clip(self, index: int) -> torch.Tensor:
        """Image ``index`` decoded and augmented: float ``[C, crop, crop]``."""
        return self.train_transform(read_image(self.entries[index].path))[:, 0]  # [C, 1, h, w] -> [C, h, w]

    def load_test_views(self, index: int) -> torch.Tensor:
        """The ``TEST.NUM_SPATIAL_CROPS`` views of image ``index``: float ``[S, C, crop, crop]``."""
        data = self.cfg.DATA
        views = spatial_views(read_image(self.entries[index].path), data.TEST_CROP_SIZE,
                              self.cfg.TEST.NUM_SPATIAL_CROPS, round(data.TEST_CROP_SIZE / CROP_FRACTION),
                              data.MEAN, data.STD)  # [S, C, 1, h, w]
        return views[:, :, 0]  # [S, C, 1, h, w] -> [S, C, h, w]


def _check_image_settings(cfg, mode: str) -> None:
    """Refuse settings that only mean something for clips: repeated augmentation samples (the batch
    layout [B, S, C, H, W] would read as a clip) and temporal test views."""
    if mode == "train" and cfg.AUG.NUM_SAMPLE != 1:
        raise ImageFolderError(f"AUG.NUM_SAMPLE {cfg.AUG.NUM_SAMPLE}: repeated augmentation is for video "
                               "clips; set AUG.NUM_SAMPLE 1 for an image dataset")
    if mode == "test" and cfg.TEST.NUM_ENSEMBLE_VIEWS != 1:
        raise ImageFolderError(f"TEST.NUM_ENSEMBLE_VIEWS {cfg.TEST.NUM_ENSEMBLE_VIEWS}: an image has one "
                               "temporal view; set TEST.NUM_ENSEMBLE_VIEWS 1 for an image dataset")
