"""``TASK mae``: masked-autoencoder pretraining (MAE.MASK_RATIO of the mask units hidden)."""
from __future__ import annotations

import torch

from hiera_video.datasets.batches import ClipBatch
from hiera_video.models import create_model

from .base import StepOutput, Task, hiera_overrides, model_input_size, register_task


@register_task("mae")
class MaskedAutoencoderTask(Task):
    """MAE pretraining: reconstruct the normalized pixels of hidden mask units. No test stage."""

    def build_model(self) -> torch.nn.Module:
        """The MAE model ``mae_`` + MODEL.MODEL_NAME with HIERA.* overrides."""
        cfg = self.cfg
        name = cfg.MODEL.MODEL_NAME
        return create_model(
            name if name.startswith("mae_") else f"mae_{name}",
            input_size=model_input_size(cfg),
            drop_path_rate=cfg.MODEL.DROP_PATH_RATE,
            decoder_embed_dim=cfg.MAE.DECODER_EMBED_DIM,
            decoder_depth=cfg.MAE.DECODER_DEPTH,
            decoder_num_heads=cfg.MAE.DECODER_NUM_HEADS,
            norm_pix_loss=cfg.MAE.NORM_PIX_LOSS,
            **hiera_overrides(cfg),
        )

    def training_step(self, model: torch.nn.Module, batch: ClipBatch, device: torch.device) -> StepOutput:
        """The MAE reconstruction loss of the batch's clips (labels are ignored)."""
        clips, _ = batch.flat()
        loss, _, _, _ = model(clips.to(device, non_blocking=True), mask_ratio=self.cfg.MAE.MASK_RATIO)
        return StepOutput(loss, batch.num_clips, replaced=batch.replaced_videos())
