"""Video data pipeline: decoding, temporal sampling, spatial transforms, datasets.

Modules (each testable alone with a tiny generated video):

- :mod:`decoding` opens a video with PyAV, decord or torchcodec and returns frames ``uint8 [T, H, W, C]``.
- :mod:`sampling` chooses frame indices (PySlowFast clip formulas, SSv2 segment sampling).
- :mod:`transforms` maps clips to clips (scale / crop / flip / normalize, RandAugment, random erasing).
- :mod:`mixup` mixes a batch (mixup / cutmix with label smoothing) into soft targets.
- :mod:`list_files` parses list / annotation files with ``file:line`` errors.
- :mod:`clip_dataset` is the dataset both build on (item contract, bad-video handling, collate functions).
- :mod:`batches` defines the batch types the collate functions make and the engine's tasks read.
- :mod:`kinetics`, :mod:`ssv2`, :mod:`ava` are the datasets; :mod:`registry` builds them by name (the
  engine's :mod:`hiera_video.engine.data` builds the loaders).
- :mod:`image_folder` reads ImageNet-style image folders for the image models, with the same item
  contract (an image is a one-frame clip).
- :mod:`probe` checks every video of a dataset (``tools/check_dataset.py``).
- :mod:`synthetic` writes small videos for tests and demos.
- :mod:`synthetic_images` writes a tiny ImageNet-style image folder for tests.
"""

import importlib

# Public names -> defining module. Imported on first use (PEP 562), so that the decode helper process,
# which needs only ``decoding``, starts without importing torchvision.
_EXPORTS = {
    "AvaBatch": "batches",
    "ClipBatch": "batches",
    "ViewBatch": "batches",
    "FailureTracker": "clip_dataset",
    "TooManyFailedVideos": "clip_dataset",
    "VideoClipDataset": "clip_dataset",
    "collate_test_batch": "clip_dataset",
    "collate_train_batch": "clip_dataset",
    "VideoDecodeError": "decoding",
    "VideoReader": "decoding",
    "open_video": "decoding",
    "probe_video": "decoding",
    "KineticsDataset": "kinetics",
    "ListFileError": "list_files",
    "DATASETS": "registry",
    "build_dataset": "registry",
    "register_dataset": "registry",
    "SSv2Dataset": "ssv2",
    "write_video": "synthetic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hiera_video.datasets' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hiera_video.datasets.{_EXPORTS[name]}"), name)
