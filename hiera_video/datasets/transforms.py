"""Spatial transforms: clip in, clip out.

Layouts: decoders give uint8 ``[T, H, W, C]``; transforms work on ``[T, C, H, W]`` (torchvision v2's video
layout, so one random draw applies to every frame of a clip); models take float ``[C, T, H, W]``.

Training (:class:`TrainTransform`): RandAugment (optional) on uint8 frames -> random resized crop (or
short-side scale jitter in ``DATA.TRAIN_JITTER_SCALES`` + random crop) -> horizontal flip (optional; off for
SSv2, whose labels say left/right) -> normalize -> random erasing (optional) -> ``[C, T, H, W]``.

Testing (:func:`spatial_views`): resize the short side, then ``TEST.NUM_SPATIAL_CROPS`` square crops:
3 crops = short side ``DATA.TEST_CROP_SIZE``, crops at both ends and the centre of the long side;
1 crop = short side ``DATA.TRAIN_JITTER_SCALES[0]`` (at least the crop size) then a centre crop of
``DATA.TEST_CROP_SIZE`` (PySlowFast's test protocol).
"""
from __future__ import annotations

import math
import random
import re
from typing import Optional, Sequence

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF


def to_tchw(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, C]`` -> ``[T, C, H, W]``."""
    return frames.permute(0, 3, 1, 2)


def normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int = 1) -> torch.Tensor:
    """uint8 or float-in-[0, 255] ``[T, C, H, W]`` -> a new float tensor ``(x / 255 - mean) / std``
    (channels on ``channel_dim``)."""
    return normalize_(clip.to(torch.float32, copy=True), mean, std, channel_dim)


def normalize_(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int = 1) -> torch.Tensor:
    """In place on a float tensor in [0, 255]: ``(x / 255 - mean) / std`` as one multiply and one subtract."""
    shape = [1] * clip.ndim
    shape[channel_dim] = -1
    std_t = torch.as_tensor(std, dtype=torch.float32)
    scale = (1.0 / (255.0 * std_t)).view(shape)
    shift = (torch.as_tensor(mean, dtype=torch.float32) / std_t).view(shape)
    return clip.mul_(scale).sub_(shift)


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[T, C, H, W]`` so that its shorter side is ``size`` (bilinear, antialiased)."""
    return TF.resize(clip, size, interpolation=InterpolationMode.BILINEAR, antialias=True)


def spatial_crop(clip: torch.Tensor, size: int, crop_index: int) -> torch.Tensor:
    """Square crop of ``[T, C, H, W]``: 0, 1, 2 = start, centre, end of the longer side.

    PySlowFast's ``uniform_crop`` offsets: ``ceil((side - size) / 2)`` for the centre."""
    height, width = clip.shape[-2:]
    if min(height, width) < size:
        raise ValueError(f"cannot crop {size}x{size} from {height}x{width}; resize the short side first")
    top = int(math.ceil((height - size) / 2))
    left = int(math.ceil((width - size) / 2))
    if crop_index not in (0, 1, 2):
        raise ValueError(f"crop_index must be 0, 1 or 2, got {crop_index}")
    if height > width:
        top = {0: 0, 1: top, 2: height - size}[crop_index]
    else:
        left = {0: 0, 1: left, 2: width - size}[crop_index]
    return clip[..., top : top + size, left : left + size]


def evaluation_short_side(crop_size: int, num_spatial_crops: int, short_side_one_crop: int) -> int:
    """Short side test clips are resized to: ``crop_size`` for 3 crops, else ``short_side_one_crop``
    (``DATA.TRAIN_JITTER_SCALES[0]``), but never below ``crop_size``."""
    return crop_size if num_spatial_crops == 3 else max(short_side_one_crop, crop_size)


def spatial_views(
    frames: torch.Tensor,
    crop_size: int,
    num_spatial_crops: int,
    short_side_one_crop: int,
    mean: Sequence[float],
    std: Sequence[float],
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """All spatial views of one clip: uint8 ``[T, H, W, C]`` -> float ``[S, C, T, crop, crop]``, written into
    ``out`` when given (e.g. a slice of all of a video's views, which saves a copy per view)."""
    if num_spatial_crops not in (1, 3):
        raise ValueError(f"TEST.NUM_SPATIAL_CROPS must be 1 or 3, got {num_spatial_crops}")
    short_side = evaluation_short_side(crop_size, num_spatial_crops, short_side_one_crop)
    clip = resize_short_side(to_tchw(frames), short_side)  # uint8 [T, C, H, W]
    crop_indices = range(3) if num_spatial_crops == 3 else [1]
    if out is None:
        out = torch.empty(len(crop_indices), clip.shape[1], clip.shape[0], crop_size, crop_size)
    # Each uint8 crop becomes float on its way into the output and is normalized there: one pass less over
    # the data than normalizing the clip and then copying float crops (benchmarks/README.md, "Profile").
    for view, crop_index in zip(out, crop_indices):
        view.copy_(spatial_crop(clip, crop_size, crop_index).transpose(0, 1))  # [T, C, h, w] -> [C, T, h, w]
    return normalize_(out, mean, std, channel_dim=1)


class ShortSideJitterCrop(torch.nn.Module):
    """Short side scaled to ``1 / uniform(1 / max, 1 / min)`` (PySlowFast's jitter), then a random square crop."""

    def __init__(self, min_size: int, max_size: int, crop_size: int):
        super().__init__()
        self.min_size, self.max_size, self.crop_size = min_size, max_size, crop_size

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """``[T, C, H, W]`` -> ``[T, C, crop, crop]``."""
        size = int(round(1.0 / random.uniform(1.0 / self.max_size, 1.0 / self.min_size)))
        clip = resize_short_side(clip, max(size, self.crop_size))
        height, width = clip.shape[-2:]
        top = random.randint(0, height - self.crop_size)
        left = random.randint(0, width - self.crop_size)
        return clip[..., top : top + self.crop_size, left : left + self.crop_size]


_RAND_AUGMENT_POLICY = re.compile(r"^rand(-[a-z]+\d+(\.\d+)?)*$")


class VideoRandAugment(v2.RandAugment):
    """RandAugment from a timm policy string (``rand-m7-n4-mstd0.5-inc1``), same op on every frame.

    torchvision's op set (its colour ops grow with magnitude in both directions, like timm's
    ``inc1`` ops); magnitude ``m`` on timm's 0..10 scale; ``mstd`` adds Gaussian noise to the magnitude of
    each op (timm). Input and output: uint8 ``[T, C, H, W]``.
    """

    _BINS_PER_UNIT = 10  # magnitudes are continuous in timm: 10 bins per unit of the 0..10 scale

    def __init__(self, policy: str = "rand-m7-n4-mstd0.5-inc1"):
        settings = self.parse_policy(policy)
        super().__init__(
            num_ops=settings["n"],
            magnitude=round(settings["m"] * self._BINS_PER_UNIT),
            num_magnitude_bins=10 * self._BINS_PER_UNIT + 1,
            interpolation=InterpolationMode.BILINEAR,
        )
        self.magnitude_std = settings["mstd"]
        self.mean_magnitude = settings["m"]

    @staticmethod
    def parse_policy(policy: str) -> dict:
        """``rand-m7-n4-mstd0.5-inc1`` -> ``{"m": 7.0, "n": 4, "mstd": 0.5, "inc": 1}`` (AUG.AA_TYPE)."""
        if not _RAND_AUGMENT_POLICY.match(policy):
            raise ValueError(f"AUG.AA_TYPE {policy!r} is not a RandAugment policy like 'rand-m7-n4-mstd0.5-inc1'")
        settings = {"m": 9.0, "n": 2, "mstd": 0.0, "inc": 1}
        for part in policy.split("-")[1:]:
            key, value = re.match(r"([a-z]+)([\d.]+)", part).groups()
            if key not in settings:
                raise ValueError(f"AUG.AA_TYPE {policy!r}: unknown setting {key!r} (known: m, n, mstd, inc)")
            settings[key] = type(settings[key])(float(value))
        if settings["inc"] != 1:
            raise ValueError(f"AUG.AA_TYPE {policy!r}: only inc1 (ops that grow with magnitude) is supported")
        return settings

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Apply ``num_ops`` random ops with per-op magnitude noise to uint8 ``[T, C, H, W]``."""
        height, width = clip.shape[-2:]
        for _ in range(self.num_ops):
            transform_id, (magnitudes_fn, signed) = self._get_random_item(self._AUGMENTATION_SPACE)
            magnitudes = magnitudes_fn(self.num_magnitude_bins, height, width)
            magnitude = 0.0
            if magnitudes is not None:
                level = random.gauss(self.mean_magnitude, self.magnitude_std)
                bin_index = min(max(round(level * self._BINS_PER_UNIT), 0), self.num_magnitude_bins - 1)
                magnitude = float(magnitudes[bin_index])
                if signed and random.random() < 0.5:
                    magnitude = -magnitude
            clip = self._apply_image_or_video_transform(
                clip, transform_id, magnitude, interpolation=self.interpolation, fill=self._fill
            )
        return clip


class RandomErasing(torch.nn.Module):
    """Erase one box per clip (same box on every frame) with per-pixel Gaussian noise (timm ``pixel`` mode).

    Applied after normalization, as in MAE-ST / PySlowFast. ``count`` boxes at most, each erased area a
    ``scale`` fraction of the frame with aspect ratio (log-uniform) in ``ratio``.
    """

    def __init__(self, probability: float, mode: str = "pixel", count: int = 1,
                 scale: tuple = (0.02, 1 / 3), ratio: tuple = (0.3, 1 / 0.3)):
        super().__init__()
        if mode not in ("pixel", "const"):
            raise ValueError(f"AUG.RE_MODE must be 'pixel' or 'const', got {mode!r}")
        self.probability, self.mode, self.count = probability, mode, count
        self.scale, self.log_ratio = scale, (math.log(ratio[0]), math.log(ratio[1]))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Float ``[T, C, H, W]`` -> same, with erased boxes."""
        if random.random() >= self.probability:
            return clip
        clip = clip.clone()
        frames, channels, height, width = clip.shape
        for _ in range(random.randint(1, self.count)):
            for _attempt in range(10):
                area = random.uniform(*self.scale) * height * width
                aspect = math.exp(random.uniform(*self.log_ratio))
                box_h, box_w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
                if box_h < height and box_w < width:
                    top, left = random.randint(0, height - box_h), random.randint(0, width - box_w)
                    shape = (frames, channels, box_h, box_w)
                    noise = torch.randn(shape) if self.mode == "pixel" else torch.zeros(shape)
                    clip[..., top : top + box_h, left : left + box_w] = noise
                    break
        return clip


class TrainTransform(torch.nn.Module):
    """Training transform: uint8 ``[T, H, W, C]`` -> float ``[C, T, crop, crop]`` (see the module docstring)."""

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        random_resized_crop: bool = True,
        jitter_scales: Sequence[int] = (256, 320),
        area_range: Sequence[float] = (0.08, 1.0),
        aspect_range: Sequence[float] = (0.75, 4 / 3),
        flip: bool = True,
        rand_augment: Optional[str] = None,
        erase_probability: float = 0.0,
        erase_mode: str = "pixel",
        erase_count: int = 1,
    ):
        super().__init__()
        self.rand_augment = VideoRandAugment(rand_augment) if rand_augment else None
        if random_resized_crop:
            self.crop = v2.RandomResizedCrop(crop_size, scale=tuple(area_range), ratio=tuple(aspect_range),
                                             antialias=True)
        else:
            self.crop = ShortSideJitterCrop(jitter_scales[0], jitter_scales[1], crop_size)
        self.flip = v2.RandomHorizontalFlip() if flip else None
        self.mean, self.std = list(mean), list(std)
        self.erase = RandomErasing(erase_probability, erase_mode, erase_count) if erase_probability > 0 else None

    @classmethod
    def from_cfg(cls, cfg, flip: Optional[bool] = None) -> "TrainTransform":
        """Build from ``DATA.*`` and ``AUG.*`` keys; ``flip`` overrides ``DATA.RANDOM_FLIP`` (SSv2: False)."""
        augment = cfg.AUG.ENABLE
        return cls(
            crop_size=cfg.DATA.TRAIN_CROP_SIZE,
            mean=cfg.DATA.MEAN,
            std=cfg.DATA.STD,
            random_resized_crop=cfg.DATA.RANDOM_RESIZED_CROP,
            jitter_scales=cfg.DATA.TRAIN_JITTER_SCALES,
            area_range=cfg.DATA.TRAIN_JITTER_SCALES_RELATIVE,
            aspect_range=cfg.DATA.TRAIN_JITTER_ASPECT_RELATIVE,
            flip=cfg.DATA.RANDOM_FLIP if flip is None else flip,
            rand_augment=cfg.AUG.AA_TYPE if augment and cfg.AUG.AA_TYPE else None,
            erase_probability=cfg.AUG.RE_PROB if augment else 0.0,
            erase_mode=cfg.AUG.RE_MODE,
            erase_count=cfg.AUG.RE_COUNT,
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, H, W, C]`` -> float ``[C, T, crop, crop]``."""
        clip = to_tchw(frames)  # [T, H, W, C] -> [T, C, H, W]
        if self.rand_augment is not None:
            clip = self.rand_augment(clip)
        clip = self.crop(clip)
        if self.flip is not None:
            clip = self.flip(clip)
        clip = normalize(clip, self.mean, self.std)
        if self.erase is not None:
            clip = self.erase(clip)
        return clip.transpose(0, 1)  # [T, C, H, W] -> [C, T, H, W]
