"""Batch-level mixup / cutmix with label smoothing, producing soft targets ``[B, num_classes]``.

Semantics of timm's ``Mixup`` (what MAE-ST and Hiera fine-tuning use): with probability ``MIXUP.PROB`` a
batch is mixed with its reverse (sample ``i`` with sample ``B - 1 - i``); when both alphas are positive,
cutmix is chosen with probability ``MIXUP.SWITCH_PROB``, else mixup. Mixup: ``x = lam * x + (1 - lam) *
x_flipped`` with ``lam ~ Beta(alpha, alpha)``. Cutmix: a box of area ``1 - lam`` (``lam ~ Beta(cutmix_alpha,
cutmix_alpha)``) from the reversed batch is pasted on every frame, and ``lam`` is corrected to the box's
real area. Targets: smoothed one-hot (``off = smoothing / K``, ``on = 1 - smoothing + off``) mixed with
the same ``lam``.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Labels ``[B]`` -> float ``[B, num_classes]`` with ``1 - smoothing + smoothing / K`` on the label."""
    off_value = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off_value, device=labels.device)
    return targets.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off_value)


class MixupCutmix:
    """Mix a batch ``[B, C, T, H, W]`` (or ``[B, C, H, W]``) and its labels ``[B]`` into soft targets."""

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        probability: float = 1.0,
        switch_probability: float = 0.5,
        label_smoothing: float = 0.1,
    ):
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("MIXUP.ALPHA or MIXUP.CUTMIX_ALPHA must be positive when MIXUP.ENABLE is True")
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.probability, self.switch_probability = probability, switch_probability
        self.label_smoothing = label_smoothing

    @classmethod
    def from_cfg(cls, cfg) -> "MixupCutmix":
        """Build from ``MIXUP.*`` and ``MODEL.NUM_CLASSES``."""
        return cls(
            num_classes=cfg.MODEL.NUM_CLASSES,
            mixup_alpha=cfg.MIXUP.ALPHA,
            cutmix_alpha=cfg.MIXUP.CUTMIX_ALPHA,
            probability=cfg.MIXUP.PROB,
            switch_probability=cfg.MIXUP.SWITCH_PROB,
            label_smoothing=cfg.MIXUP.LABEL_SMOOTH_VALUE,
        )

    def _draw(self) -> tuple[float, bool]:
        """(lam, use_cutmix) for one batch; lam = 1 means unmixed."""
        if np.random.rand() >= self.probability:
            return 1.0, False
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or np.random.rand() < self.switch_probability)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return float(np.random.beta(alpha, alpha)), use_cutmix

    @staticmethod
    def _cutmix_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of a box of area about ``(1 - lam) * H * W`` centred at random."""
        cut_ratio = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * cut_ratio), int(width * cut_ratio)
        centre_y, centre_x = np.random.randint(height), np.random.randint(width)
        top, bottom = np.clip([centre_y - cut_h // 2, centre_y + cut_h // 2], 0, height)
        left, right = np.clip([centre_x - cut_w // 2, centre_x + cut_w // 2], 0, width)
        return int(top), int(bottom), int(left), int(right)

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return mixed clips (same shape) and soft targets ``[B, num_classes]``."""
        if clips.shape[0] % 2:
            raise ValueError(f"mixup needs an even batch size, got {clips.shape[0]} (set TRAIN.BATCH_SIZE even)")
        lam, use_cutmix = self._draw()
        reversed_clips = clips.flip(0)
        if lam < 1.0:
            clips = clips.clone()
            if use_cutmix:
                height, width = clips.shape[-2:]
                top, bottom, left, right = self._cutmix_box(height, width, lam)
                clips[..., top:bottom, left:right] = reversed_clips[..., top:bottom, left:right]
                lam = 1.0 - (bottom - top) * (right - left) / (height * width)
            else:
                clips.mul_(lam).add_(reversed_clips, alpha=1.0 - lam)
        targets = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        return clips, lam * targets + (1.0 - lam) * targets.flip(0)
