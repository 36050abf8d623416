"""``TASK mae``: masked-autoencoder pretraining (MAE.MASK_RATIO of the mask units hidden; MAE.TARGET pixel or
hog; MAE.MULTI_SCALE_FUSION of the encoder stages into the decoder)."""
from __future__ import annotations

import math

import torch
from fvcore.common.config import CfgNode

from hiera_video.datasets.batches import ClipBatch
from hiera_video.models import create_model

from .base import StepOutput, Task, hiera_overrides, model_input_size, named_architecture, register_task


@register_task("mae")
class MaskedAutoencoderTask(Task):
    """MAE pretraining: predict the normalized pixels or the HOG of hidden mask units. No test stage."""

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """MAE.MASK_RATIO must keep at least one mask unit of the input visible."""
        name = cfg.MODEL.MODEL_NAME
        architecture = named_architecture(cfg, name if name.startswith("mae_") else f"mae_{name}")
        input_size = model_input_size(cfg)[-len(architecture["patch_stride"]):]  # (T, H, W), or (H, W) for images
        tokens = [size // stride for size, stride in zip(input_size, architecture["patch_stride"])]
        num_units = math.prod(t // m for t, m in zip(tokens, architecture["mask_unit_size"]))
        if int(num_units * (1 - cfg.MAE.MASK_RATIO)) < 1:
            raise ValueError(
                f"MAE.MASK_RATIO {cfg.MAE.MASK_RATIO} hides all {num_units} mask units of a "
                f"{'x'.join(map(str, input_size))} input: lower the ratio (at most {1 - 1 / num_units:.3f}) or "
                "feed larger clips (DATA.NUM_FRAMES, DATA.TRAIN_CROP_SIZE).")

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
            target=cfg.MAE.TARGET,
            multi_scale_fusion=cfg.MAE.MULTI_SCALE_FUSION,
            **hiera_overrides(cfg),
        )

    def training_step(self, model: torch.nn.Module, batch: ClipBatch, device: torch.device) -> StepOutput:
        """The MAE reconstruction loss of the batch's clips (labels are ignored)."""
        clips, _ = batch.flat()
        loss, _, _, _ = model(clips.to(device, non_blocking=True), mask_ratio=self.cfg.MAE.MASK_RATIO)
        return StepOutput(loss, batch.num_clips, replaced=batch.replaced_videos())
