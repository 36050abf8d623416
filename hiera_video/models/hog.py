"""Histograms of oriented gradients as MaskFeat's HOG targets (Wei et al., CVPR 2022), for MAE pretraining.

Per frame and per RGB channel: Sobel gradients (reflect padding), each pixel's gradient magnitude weighted
by a Gaussian window tiled over the frame (one window per patch) and cast whole into one of ``num_bins``
unsigned orientation bins (0 to 180 degrees), summed over ``cell_size`` x ``cell_size``-pixel cells, each
cell's histogram L2-normalized (no block normalization). A patch's target is its cells concatenated.
Everything is batched tensor work on the input's device; no loop over frames, patches or pixels.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gaussian_window(size: int, std: float, like: torch.Tensor) -> torch.Tensor:
    """A [size, size] Gaussian centred on the window, summing to 1, of ``like``'s dtype and device."""
    offsets = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    profile = torch.exp(-0.5 * (offsets / std) ** 2)
    window = profile[:, None] * profile[None, :]
    return window / window.sum()


class HOGTarget(nn.Module):
    """HOG features of frames ``[N, C, H, W]`` -> ``[N, C, num_bins, H / cell_size, W / cell_size]``.

    ``window``: side of the Gaussian magnitude window (MaskFeat: 16, the patch size), tiled over the
    frame, so H and W must be multiples of it; 0 weights every pixel alike.
    """

    def __init__(self, num_bins: int = 9, cell_size: int = 8, window: int = 16):
        super().__init__()
        self.num_bins, self.cell_size, self.window = num_bins, cell_size, window

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-cell, per-channel orientation histograms, L2-normalized over the bins of each cell."""
        dtype = torch.promote_types(frames.dtype, torch.float32)
        with torch.autocast(frames.device.type, enabled=False):
            x = frames.to(dtype)
            n, c, h, w = x.shape
            padded = F.pad(x.reshape(n * c, h, w), (1, 1, 1, 1), mode="reflect")
            # separable Sobel: smooth [1, 2, 1] across, then difference along. Written as the difference of
            # two smoothed rows, a gradient across an edge mirrored by the padding is exactly 0, so border
            # pixels do not flip between the first and last orientation bin on rounding noise.
            across_rows = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]  # [N*C, H, W+2]
            across_cols = padded[..., :-2] + 2 * padded[..., 1:-1] + padded[..., 2:]  # [N*C, H+2, W]
            gx = across_rows[..., :-2] - across_rows[..., 2:]
            gy = across_cols[:, :-2] - across_cols[:, 2:]
            magnitude = torch.hypot(gx, gy)
            if self.window:
                reps = (h // self.window, w // self.window)
                magnitude = magnitude * gaussian_window(self.window, self.window / 2, x).repeat(*reps)
            # unsigned orientation in [0, pi) -> bin index; the magnitude goes wholly to that bin
            bins = torch.floor(torch.atan2(gy, gx) / math.pi * self.num_bins).long() % self.num_bins
            histogram = magnitude.new_zeros(n * c, self.num_bins, h, w)
            histogram.scatter_add_(1, bins[:, None], magnitude[:, None])
            # [N*C, bins, H, W] -> per-cell sums [N*C, bins, H/cell, W/cell]
            cells = F.avg_pool2d(histogram, self.cell_size) * self.cell_size ** 2
            cells = F.normalize(cells, dim=1)
        return cells.view(n, c, self.num_bins, h // self.cell_size, w // self.cell_size)


def hog_per_patch(hog: HOGTarget, frames: torch.Tensor, patch_size: int) -> torch.Tensor:
    """HOG targets per patch: frames [B, C, T, H, W] (or [B, C, H, W]) -> [B, T*H'*W', k*k*C*bins] with
    k = patch_size / cell_size cells per side, in (ky, kx, c, bin) order; tokens in (t, h', w') order."""
    video = frames.dim() == 5
    if not video:
        frames = frames[:, :, None]
    batch, chans, time, height, width = frames.shape
    k = patch_size // hog.cell_size
    # [B, C, T, H, W] -> [B*T, C, H, W] -> [B*T, C, bins, H/cell, W/cell]
    cells = hog(frames.transpose(1, 2).reshape(batch * time, chans, height, width))
    grid_h, grid_w = height // patch_size, width // patch_size
    # [B*T, C, bins, H'*k, W'*k] -> [B, T, H', W', k, k, C, bins]
    cells = cells.view(batch, time, chans, hog.num_bins, grid_h, k, grid_w, k)
    patches = cells.permute(0, 1, 4, 6, 5, 7, 2, 3)
    return patches.reshape(batch, time * grid_h * grid_w, k * k * chans * hog.num_bins)
