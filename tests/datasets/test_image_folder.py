"""The ImageNet-style folder reader: ImageFolder's class numbering, the training and test views of the image
recipe, corrupt images handled as bad videos are, and a folder that does not fit the config explained."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.datasets import ImageFolder
from torchvision.transforms.v2 import functional as TF

from hiera_video.config.defaults import get_cfg
from hiera_video.datasets import build_dataset
from hiera_video.datasets.clip_dataset import collate_test_batch, collate_train_batch
from hiera_video.datasets.image_folder import CROP_FRACTION, ImageFolderError, read_image
from hiera_video.datasets.synthetic_images import write_image_folder
from hiera_video.utils.errors import MissingInputError

CROP = 32


def image_cfg(root: Path, num_classes: int = 3):
    """The defaults pointed at ``root`` as an ``imagenet`` dataset of ``num_classes`` classes, 1 view."""
    cfg = get_cfg()
    cfg.TRAIN.DATASET = cfg.TEST.DATASET = "imagenet"
    cfg.DATA.PATH_TO_DATA_DIR = str(root)
    cfg.DATA.TRAIN_CROP_SIZE = cfg.DATA.TEST_CROP_SIZE = CROP
    cfg.MODEL.NUM_CLASSES = num_classes
    cfg.TEST.NUM_ENSEMBLE_VIEWS = cfg.TEST.NUM_SPATIAL_CROPS = 1
    cfg.AUG.ENABLE = True
    cfg.AUG.AA_TYPE = "rand-m9-n2-mstd0.5-inc1"
    return cfg


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 classes, 2 training and 1 val JPEG each."""
    return write_image_folder(tmp_path_factory.mktemp("imagenet"))


def test_classes_are_numbered_as_torchvisions_image_folder_numbers_them(folder):
    dataset = build_dataset(image_cfg(folder), "train")
    reference = ImageFolder(str(folder / "train"))
    assert dataset.class_names == reference.classes
    assert [(entry.path, entry.label) for entry in dataset.entries] == reference.samples


def test_val_images_take_the_labels_of_the_training_classes(tmp_path):
    write_image_folder(tmp_path, num_classes=3, per_class={"train": 1, "val": 1})
    for name in ("class_0", "class_2"):  # a val folder of two classes must not renumber them 0 and 1
        for image in (tmp_path / "val" / name).iterdir():
            image.unlink()
        (tmp_path / "val" / name).rmdir()
    with pytest.raises(ImageFolderError, match="class_0"):
        build_dataset(image_cfg(tmp_path), "val")


def test_training_items_are_augmented_images_and_batch_as_clip_batches(folder):
    dataset = build_dataset(image_cfg(folder), "train")
    batch = collate_train_batch([dataset[0], dataset[1]])
    assert batch.clips.shape == (2, 3, CROP, CROP) and batch.clips.dtype == torch.float32
    assert batch.labels.tolist() == [dataset.entries[0].label, dataset.entries[1].label]
    assert batch.num_clips == 2 and batch.flat()[0].shape == (2, 3, CROP, CROP)


def test_a_test_view_is_the_centre_crop_after_resizing_the_short_side_to_crop_over_0_875(folder):
    cfg = image_cfg(folder)
    dataset = build_dataset(cfg, "val")
    item = dataset[0]
    assert item["views"].shape == (1, 3, CROP, CROP)
    image = read_image(dataset.entries[0].path)[0].permute(2, 0, 1)  # [H, W, C] -> [C, H, W]
    resized = TF.resize(image, round(CROP / CROP_FRACTION), antialias=True).float()  # short side 37 for 32
    top, left = (resized.shape[1] - CROP + 1) // 2, (resized.shape[2] - CROP + 1) // 2
    mean, std = torch.tensor(cfg.DATA.MEAN)[:, None, None], torch.tensor(cfg.DATA.STD)[:, None, None]
    expected = (resized[:, top:top + CROP, left:left + CROP] / 255 - mean) / std
    assert torch.allclose(item["views"][0], expected, atol=1e-5)


def test_a_corrupt_image_is_replaced_in_training_and_reported_in_testing(tmp_path):
    write_image_folder(tmp_path, per_class={"train": 2, "val": 1})
    broken = tmp_path / "val" / "class_1" / "broken.JPEG"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    (tmp_path / "train" / "class_1" / "broken.JPEG").write_bytes(broken.read_bytes())
    cfg = image_cfg(tmp_path)
    cfg.TRAIN.MAX_FAILED_FRACTION = 0.5  # 1 in 7
    train = build_dataset(cfg, "train")
    index = next(i for i, entry in enumerate(train.entries) if entry.path.endswith("broken.JPEG"))
    item = train[index]
    assert item["index"] != index and [path for path, _ in item["replaced"]] == [train.entries[index].path]
    val = build_dataset(cfg, "val")
    batch = collate_test_batch([val[i] for i in range(len(val))])
    assert [failure["path"] for failure in batch.failed] == [str(broken)]
    assert batch.views.shape == (len(val) - 1, 1, 3, CROP, CROP)


def test_a_folder_that_does_not_fit_the_config_says_what_to_change(tmp_path, folder):
    with pytest.raises(MissingInputError, match="no train/ folder"):
        build_dataset(image_cfg(tmp_path), "train")
    with pytest.raises(ImageFolderError, match="MODEL.NUM_CLASSES 3"):
        build_dataset(image_cfg(folder, num_classes=1000), "train")
    (tmp_path / "train" / "empty_class").mkdir(parents=True)
    with pytest.raises(ImageFolderError, match="empty_class"):
        build_dataset(image_cfg(tmp_path), "train")
    cfg = image_cfg(folder)
    cfg.AUG.NUM_SAMPLE = 2
    with pytest.raises(ImageFolderError, match="AUG.NUM_SAMPLE"):
        build_dataset(cfg, "train")
