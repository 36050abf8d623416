"""Figures of MAE reconstructions: per clip, labelled rows of input frames, masked input, reconstruction
and reconstruction pasted into the visible parts; the title states the mask ratio and the loss.

Drawing needs matplotlib (``pip install -e ".[plot]"`` in a checkout, or ``pip install matplotlib``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from fvcore.common.config import CfgNode

from hiera_video.utils.errors import MissingInputError, UserError
from hiera_video.utils.plot_log import import_pyplot

ROW_LABELS = ("input", "masked input", "reconstruction", "reconstruction\npasted into\nthe visible parts")
# Grey shown where the encoder saw nothing.
_MASKED_GREY = 0.5
# Inches per frame thumbnail.
_CELL_INCHES = 1.6


@dataclass
class MaeReconstruction:
    """What an MAE model made of some clips under one random mask."""

    rows: torch.Tensor  # [B, 4, T', H, W, C] in [0, 1]: ROW_LABELS' rows over the frames the model predicts
    mask_ratio: float
    hidden_units: int  # mask units hidden per clip
    num_units: int  # mask units per clip
    loss: float  # the training loss on these clips under this mask
    note: str = ""  # how to read the reconstruction rows


def _to_pixels(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo DATA.MEAN / DATA.STD normalization: [C, T, H, W] -> [T, H, W, C] in [0, 1]."""
    mean_t = torch.tensor(mean, dtype=clip.dtype).view(-1, 1, 1, 1)
    std_t = torch.tensor(std, dtype=clip.dtype).view(-1, 1, 1, 1)
    return (clip * std_t + mean_t).clamp(0, 1).permute(1, 2, 3, 0)


@torch.no_grad()
def reconstruct_clips(model: torch.nn.Module, clips: torch.Tensor, mask_ratio: float, mean: Sequence[float],
                      std: Sequence[float], seed: int = 0) -> MaeReconstruction:
    """Hide ``mask_ratio`` of the mask units of ``clips`` [B, C, T, H, W] (normalized), reconstruct them and
    score the reconstruction with the model's own loss."""
    model.eval()
    torch.manual_seed(seed)  # the random mask
    out = model.reconstruct(clips, mask_ratio=mask_ratio)
    loss = model(clips, mask_ratio=mask_ratio, mask=out["mask"])[0].item()
    rows = []
    for target, reconstruction, pasted, hidden in zip(out["target"], out["reconstruction"], out["pasted"],
                                                      out["pixel_mask"]):
        target_pixels = _to_pixels(target, mean, std)
        hidden = hidden.permute(1, 2, 3, 0)  # [1, T, H, W] -> [T, H, W, 1], like the pixels
        masked_pixels = target_pixels * (1 - hidden) + _MASKED_GREY * hidden
        rows.append(torch.stack([target_pixels, masked_pixels, _to_pixels(reconstruction, mean, std),
                                 _to_pixels(pasted, mean, std)]))
    num_units = out["mask"].shape[1]
    note = ("Reconstructed patches are shown with the mean and std of the true patch: the loss compares "
            "per-patch normalized pixels (MAE.NORM_PIX_LOSS)." if getattr(model, "norm_pix_loss", False) else "")
    return MaeReconstruction(torch.stack(rows), mask_ratio, num_units - int(out["mask"][0].sum()), num_units,
                             loss, note)


def reconstruction_title(result: MaeReconstruction, heading: str = "") -> str:
    """``heading``, then the mask ratio (and the hidden mask units it makes) and the loss."""
    return (f"{heading}mask ratio {result.mask_ratio:g} ({result.hidden_units} of {result.num_units} mask units "
            f"hidden), loss {result.loss:.3f} on these clips")


def reconstruction_figure(result: MaeReconstruction, clip_names: Sequence[str], heading: str = ""):
    """A matplotlib figure: clips side by side, ROW_LABELS' rows down, one column per predicted frame, and a
    title with ``heading``, the mask ratio and the loss."""
    plt = import_pyplot()
    num_clips, num_rows, num_frames = result.rows.shape[:3]
    figure, axes = plt.subplots(num_rows, num_clips * num_frames, squeeze=False,
                                figsize=(1.5 + _CELL_INCHES * num_clips * num_frames, 1.4 + _CELL_INCHES * num_rows))
    for clip, name in enumerate(clip_names):
        for row in range(num_rows):
            for frame in range(num_frames):
                axis = axes[row][clip * num_frames + frame]
                axis.imshow(result.rows[clip, row, frame].numpy(), interpolation="nearest")
                axis.set_xticks([])
                axis.set_yticks([])
                if row == 0:
                    axis.set_title(f"{name}\nframe {frame + 1}" if frame == 0 else f"frame {frame + 1}", fontsize=9)
    for row, label in enumerate(ROW_LABELS):
        axes[row][0].set_ylabel(label, fontsize=10)
    figure.suptitle(reconstruction_title(result, heading), fontsize=11)
    if result.note:
        figure.text(0.5, 0.01, result.note, ha="center", fontsize=8)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return figure


def load_mae_config(checkpoint: str, cfg_file: Optional[str] = None, opts: Sequence[str] = ()) -> CfgNode:
    """``cfg_file`` with ``opts`` when given, else the config saved in the toolkit ``checkpoint``; it must be
    an MAE config with pixel targets (HOG targets give nothing to look at)."""
    from hiera_video.config import load_config
    from hiera_video.inference.loading import config_from_yaml_text
    from hiera_video.models.checkpoint import read_checkpoint_contents

    if cfg_file:
        cfg = load_config(cfg_file, opts)
    else:
        text = read_checkpoint_contents(checkpoint).cfg_yaml
        if text is None:
            raise UserError(f"{checkpoint} carries no config (an official checkpoint?): give the MAE config it "
                            "was trained with (--cfg FILE).")
        cfg = config_from_yaml_text(text, checkpoint, opts)
    if cfg.TASK != "mae" or cfg.MAE.TARGET != "pixel":
        raise UserError(f"{checkpoint}: its config has TASK {cfg.TASK!r}, MAE.TARGET {cfg.MAE.TARGET!r}; only an "
                        "MAE with pixel targets reconstructs pixels to show.")
    return cfg


def resolve_checkpoint(path: str) -> str:
    """``path`` itself, or the latest checkpoint when ``path`` is a run's OUTPUT_DIR."""
    from hiera_video.engine.checkpoint import find_latest_checkpoint

    if not os.path.isdir(path):
        return path
    latest = find_latest_checkpoint(path)
    if latest is None:
        raise MissingInputError(f"no checkpoints/checkpoint_epoch_*.pyth in {path}: is it the OUTPUT_DIR of "
                                "an MAE run?")
    return str(latest)


def _test_clips(cfg: CfgNode, num_clips: int) -> tuple[torch.Tensor, list[str]]:
    """The first view of ``num_clips`` videos spread over the TEST.SPLIT list, and their class names."""
    from hiera_video.datasets import build_dataset

    dataset = build_dataset(cfg, cfg.TEST.SPLIT)
    count = min(num_clips, len(dataset))
    indices = [round(i * (len(dataset) - 1) / max(count - 1, 1)) for i in range(count)]
    items = [item for item in (dataset[i] for i in indices) if "error" not in item]
    if not items:
        raise UserError(f"None of the {count} videos chosen from the {cfg.TEST.SPLIT} list could be decoded.")
    clips = torch.stack([item["views"][0] for item in items])
    return clips, [dataset.class_names[item["label"]] for item in items]


def load_mae_model(checkpoint: str, cfg: CfgNode) -> torch.nn.Module:
    """The MAE model of ``cfg`` with every weight from ``checkpoint``."""
    from hiera_video.engine.tasks import MaskedAutoencoderTask
    from hiera_video.models import load_checkpoint

    model = MaskedAutoencoderTask(cfg).build_model()
    load_checkpoint(model, checkpoint, complete=True)
    return model


def save_figure(figure, out_path: str | Path, title: str, description: str) -> Path:
    """Save ``figure`` as a PNG whose text chunks carry ``title`` and ``description`` too (for readers that
    cannot see the image); close it; return the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=80, metadata={"Title": title, "Description": description})
    import_pyplot().close(figure)
    return out_path


def write_mae_visualization(checkpoint: str, out_path: str, cfg_file: Optional[str] = None,
                            opts: Sequence[str] = (), num_clips: int = 2) -> Path:
    """Reconstruct ``num_clips`` test videos with the MAE ``checkpoint`` (a file, or a run's OUTPUT_DIR for
    its latest checkpoint) and save the labelled figure at ``out_path``. The config is ``cfg_file`` or,
    without one, the config saved in the checkpoint; ``opts`` are ``KEY VALUE`` overrides."""
    import_pyplot()  # fail before any work when matplotlib is missing
    checkpoint = resolve_checkpoint(checkpoint)
    cfg = load_mae_config(checkpoint, cfg_file, opts)
    model = load_mae_model(checkpoint, cfg)
    clips, names = _test_clips(cfg, num_clips)
    result = reconstruct_clips(model, clips, cfg.MAE.MASK_RATIO, cfg.DATA.MEAN, cfg.DATA.STD, cfg.RNG_SEED)
    heading = f"MAE reconstruction, {Path(checkpoint).name}: "
    rows = "; ".join(label.replace("\n", " ") for label in ROW_LABELS)
    return save_figure(reconstruction_figure(result, names, heading), out_path, reconstruction_title(result, heading),
                       f"rows: {rows}; columns: {', '.join(names)}")
