"""Image grids of MAE reconstructions: per clip, rows of input frames, masked input and reconstruction."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from fvcore.common.config import CfgNode
from torchvision.utils import make_grid, save_image

# Grey shown where the encoder saw nothing.
_MASKED_GREY = 0.5


def _to_pixels(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo DATA.MEAN / DATA.STD normalization: [C, T, H, W] -> [T, C, H, W] in [0, 1]."""
    mean_t = torch.tensor(mean, dtype=clip.dtype).view(-1, 1, 1, 1)
    std_t = torch.tensor(std, dtype=clip.dtype).view(-1, 1, 1, 1)
    return (clip * std_t + mean_t).clamp(0, 1).transpose(0, 1)


@torch.no_grad()
def mae_reconstruction_grid(model: torch.nn.Module, clips: torch.Tensor, mask_ratio: float,
                            mean: Sequence[float], std: Sequence[float], seed: int = 0) -> torch.Tensor:
    """A [3, H, W] image in [0, 1]: for each clip of ``clips`` [B, C, T, H, W], three rows over the frames
    the model predicts: the input, the input with hidden patches greyed out, and the input with hidden
    patches replaced by the reconstruction."""
    model.eval()
    torch.manual_seed(seed)  # the random mask
    out = model.reconstruct(clips, mask_ratio=mask_ratio)
    rows = []
    for target, pasted, hidden in zip(out["target"], out["pasted"], out["pixel_mask"]):
        target_pixels = _to_pixels(target, mean, std)
        hidden = hidden.transpose(0, 1)  # [1, T, H, W] -> [T, 1, H, W], like the pixels
        masked_pixels = target_pixels * (1 - hidden) + _MASKED_GREY * hidden
        rows += [target_pixels, masked_pixels, _to_pixels(pasted, mean, std)]
    frames_per_row = rows[0].shape[0]
    return make_grid(torch.cat(rows), nrow=frames_per_row, padding=2, pad_value=1.0)


def write_mae_visualization(cfg: CfgNode, checkpoint: str, out_path: str, num_clips: int = 4) -> Path:
    """Load the MAE model of ``cfg`` from ``checkpoint``, reconstruct the first view of the first
    ``num_clips`` videos of the TEST.SPLIT list and save the grid as an image at ``out_path``."""
    from hiera_video.datasets import build_dataset
    from hiera_video.engine.tasks import MaskedAutoencoderTask
    from hiera_video.models import load_checkpoint

    model = MaskedAutoencoderTask(cfg).build_model()
    load_checkpoint(model, checkpoint)
    dataset = build_dataset(cfg, cfg.TEST.SPLIT)
    items = [dataset[i] for i in range(min(num_clips, len(dataset)))]
    clips = torch.stack([item["views"][0] for item in items if "error" not in item])
    if len(clips) == 0:
        raise RuntimeError(f"None of the first {len(items)} videos of the {cfg.TEST.SPLIT} list could be decoded.")
    grid = mae_reconstruction_grid(model, clips, cfg.MAE.MASK_RATIO, cfg.DATA.MEAN, cfg.DATA.STD, cfg.RNG_SEED)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, out_path)
    return out_path
