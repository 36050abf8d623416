"""Video data pipeline: decoding, temporal sampling, spatial transforms, datasets and loaders.

Modules (each testable alone with a tiny generated video):

- :mod:`decoding` opens a video with PyAV, decord or torchcodec and returns frames ``uint8 [T, H, W, C]``.
- :mod:`sampling` chooses frame indices (PySlowFast clip formulas, SSv2 segment sampling).
- :mod:`transforms` maps clips to clips (scale / crop / flip / normalize, RandAugment, random erasing).
- :mod:`mixup` mixes a batch (mixup / cutmix with label smoothing) into soft targets.
- :mod:`list_files` parses list / annotation files with ``file:line`` errors.
- :mod:`kinetics`, :mod:`ssv2` are the datasets; :mod:`loader` builds datasets and data loaders.
- :mod:`synthetic` writes small videos for tests and demos.
"""
