"""Masked autoencoder pretraining for Hiera: multi-scale fusion of the encoder stages and a light decoder.

``loss, pred, label, mask = mae(x, mask_ratio=0.9)`` follows the official semantics: ``mask`` is
[B, num_mask_units] bool with True = kept (visible); ``pred`` and ``label`` are the predictions and the
targets of the masked tokens only; the loss is their mean squared error. The target is the per-patch
normalized pixels (``target="pixel"``, official) or MaskFeat's HOG of the patch (``target="hog"``,
:mod:`hiera_video.models.hog`); the decoder predicts as many numbers per token as the target has.

Under ``torch.compile`` the boolean selection of kept units (data-dependent shapes) splits the graph at the
masking steps; the transformer blocks between them compile as usual. The classifier compiles whole.
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from .hiera import Hiera, HieraBlock
from .hog import HOGTarget, hog_per_patch
from .token_order import undo_windowing


def apply_fusion_head(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Map one stage's per-mask-unit blocks to the final block resolution and width with a strided conv:
    [B, units, *block, C] -> [B, units, *block_final, C_out]."""
    if isinstance(head, nn.Identity):
        return x
    batch, units = x.shape[:2]
    # [B, U, *block, C] -> [B*U, C, *block] -> conv -> [B, U, *block', C']
    x = head(x.flatten(0, 1).movedim(-1, 1))
    return x.movedim(1, -1).unflatten(0, (batch, units))


class MaskedAutoencoderHiera(Hiera):
    """Hiera encoder (no norm, no head) with multi-scale fusion heads and a transformer decoder.

    Args (beyond ``Hiera``'s): decoder_embed_dim, decoder_depth, decoder_num_heads of the decoder;
    ``norm_pix_loss``: normalize each pixel target patch by its mean and (unbiased) variance;
    ``target``: "pixel" or "hog" (MaskFeat HOG: 9 bins, 8x8-pixel cells, per frame and channel);
    ``multi_scale_fusion``: feed the decoder the fused stages (paper) or, if False, the last stage only.
    """

    TARGETS = ("pixel", "hog")

    def __init__(self, decoder_embed_dim: int = 512, decoder_depth: int = 8, decoder_num_heads: int = 16,
                 norm_pix_loss: bool = True, target: str = "pixel", multi_scale_fusion: bool = True, **kwargs):
        super().__init__(**kwargs)
        if target not in self.TARGETS:
            raise ValueError(f"target must be one of {self.TARGETS}, not {target!r}")
        del self.norm, self.head
        self.norm_pix_loss = norm_pix_loss
        self.target = target
        encoder_dim = self.blocks[-1].dim_out
        self.encoder_norm = nn.LayerNorm(encoder_dim, eps=1e-6)
        self.mask_unit_spatial_shape_final = [
            m // s ** self.q_pool for m, s in zip(self.mask_unit_size, self.q_stride)]
        self.tokens_spatial_shape_final = [
            t // s ** self.q_pool for t, s in zip(self.tokens_spatial_shape, self.q_stride)]

        # stages before the last pooling are brought to the final resolution; later stages share it
        self.multi_scale_fusion_heads = nn.ModuleList()
        unit_shape = list(self.mask_unit_size)
        for end in self.stage_ends[: self.q_pool] if multi_scale_fusion else []:
            kernel = [u // f for u, f in zip(unit_shape, self.mask_unit_spatial_shape_final)]
            conv = nn.Conv3d if len(kernel) == 3 else nn.Conv2d
            self.multi_scale_fusion_heads.append(
                conv(self.blocks[end].dim_out, encoder_dim, kernel_size=kernel, stride=kernel))
            unit_shape = [u // s for u, s in zip(unit_shape, self.q_stride)]
        self.multi_scale_fusion_heads.append(nn.Identity())

        self.decoder_embed = nn.Linear(encoder_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, math.prod(self.tokens_spatial_shape_final), decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList(
            HieraBlock(decoder_embed_dim, decoder_embed_dim, decoder_num_heads) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.pred_stride = self.patch_stride[-1] * self.q_stride[-1] ** self.q_pool
        pixels_per_token = self.pred_stride ** min(2, len(self.q_stride)) * self.in_chans
        if target == "hog":
            self.hog = HOGTarget(window=self.pred_stride)
            if self.pred_stride % self.hog.cell_size:
                raise ValueError(f"HOG cells of {self.hog.cell_size} pixels do not tile "
                                 f"{self.pred_stride}-pixel patches")
            cells = (self.pred_stride // self.hog.cell_size) ** 2
            self.target_dim = cells * self.in_chans * self.hog.num_bins
        else:
            self.target_dim = pixels_per_token
        self.decoder_pred = nn.Linear(decoder_embed_dim, self.target_dim)
        self._init_mae_weights()

    def _init_mae_weights(self) -> None:
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
            elif isinstance(module, nn.LayerNorm):
                nn.init.constant_(module.bias, 0)
                nn.init.constant_(module.weight, 1.0)
        # the patch embedding is initialized like a linear layer
        weight = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the encoder's last-stage tokens, normalized (for probing a pretrained encoder)."""
        tokens, _ = self.forward_tokens(x)
        return self.encoder_norm(tokens.mean(dim=1))

    def forward_encoder(self, x: torch.Tensor, mask_ratio: float,
                        mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode the visible units: returns (fused latent [B, kept, *block_final, C], mask)."""
        if mask is None:
            mask = self.get_random_mask(x, mask_ratio)
        _, intermediates = self.forward_tokens(x, mask, return_intermediates=True)
        # resolution is constant after the last pooling, so only the last of those stages is fused;
        # without multi-scale fusion only the last stage remains (one identity head)
        intermediates = intermediates[: len(self.multi_scale_fusion_heads) - 1] + intermediates[-1:]
        latent = sum(apply_fusion_head(head, feature)
                     for head, feature in zip(self.multi_scale_fusion_heads, intermediates))
        return self.encoder_norm(latent), mask

    def forward_decoder(self, latent: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decode all tokens: returns (pred [B, N_final, pixels], kept-token mask [B, N_final])."""
        x = self.decoder_embed(latent)
        batch, channels = x.shape[0], x.shape[-1]
        block_shape = x.shape[2:-1]
        # scatter visible units into a full grid of mask tokens: [B, units_all, *block_final, C]
        full = self.mask_token.expand(batch, mask.shape[1], math.prod(block_shape), channels).clone()
        full[mask] = x.flatten(0, 1).flatten(1, -2).to(full.dtype)
        full = full.view(batch, mask.shape[1], *block_shape, channels)
        x = undo_windowing(full, self.mask_spatial_shape, self.mask_unit_spatial_shape_final)
        token_mask = mask.view(batch, mask.shape[1], *([1] * len(block_shape)), 1)
        token_mask = token_mask.expand(-1, -1, *block_shape, 1)
        token_mask = undo_windowing(token_mask, self.mask_spatial_shape, self.mask_unit_spatial_shape_final)

        x = x.reshape(batch, -1, channels) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x)), token_mask.reshape(batch, -1)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels to per-token targets: video [B, C, T, H, W] -> [B, T'*H'*W', p*p*C] (first frame of each
        temporal patch; (py, px, c) order); image [B, C, H, W] -> [B, H'*W', (c, py, px)] as the official."""
        size = self.pred_stride
        if x.dim() == 5:
            x = x[:, :, :: self.patch_stride[0]]
            # [B, C, T, H, W] -> [B, T, H', W', C, p, p] -> [B, T, H', W', p, p, C]
            patches = x.unfold(3, size, size).unfold(4, size, size)
            return patches.permute(0, 2, 3, 4, 5, 6, 1).flatten(1, 3).flatten(2)
        # [B, C, H, W] -> [B, H, W, C] -> [B, H', W', C, p, p]
        patches = x.permute(0, 2, 3, 1).unfold(1, size, size).unfold(2, size, size)
        return patches.flatten(1, 2).flatten(2)

    def unpatchify(self, tokens: torch.Tensor, batch: int) -> torch.Tensor:
        """Inverse of ``patchify``: [B, N, p*p*C] -> pixels [B, C, T', H, W] (video) or [B, C, H, W]."""
        size, chans = self.pred_stride, self.in_chans
        grid = self.tokens_spatial_shape_final
        if len(grid) == 3:
            t, h, w = grid
            x = tokens.view(batch, t, h, w, size, size, chans)
            # [B, T, H', W', p, p, C] -> [B, C, T, H', p, W', p]
            return x.permute(0, 6, 1, 2, 4, 3, 5).reshape(batch, chans, t, h * size, w * size)
        h, w = grid
        x = tokens.view(batch, h, w, chans, size, size)
        return x.permute(0, 3, 1, 4, 2, 5).reshape(batch, chans, h * size, w * size)

    def pixel_targets(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token targets and the per-patch mean and std used to normalize them."""
        label = self.patchify(x)
        mean = label.mean(dim=-1, keepdim=True)
        std = (label.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5
        if self.norm_pix_loss:
            label = (label - mean) / std
        return label, mean, std

    def hog_targets(self, x: torch.Tensor) -> torch.Tensor:
        """Per-token HOG targets [B, N_final, target_dim] of the frames ``patchify`` reads."""
        if x.dim() == 5:
            x = x[:, :, :: self.patch_stride[0]]
        return hog_per_patch(self.hog, x, self.pred_stride)

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """What the decoder predicts for every token: normalized pixels or HOG, [B, N_final, target_dim]."""
        if self.target == "hog":
            return self.hog_targets(x)
        return self.pixel_targets(x)[0]

    def forward(self, x: torch.Tensor, mask_ratio: float = 0.9, mask: Optional[torch.Tensor] = None):
        """Returns (loss, pred of masked tokens, label of masked tokens, mask [B, units], True = kept)."""
        latent, mask = self.forward_encoder(x, mask_ratio, mask)
        pred, kept = self.forward_decoder(latent, mask)
        label = self.targets(x)
        masked = ~kept
        pred, label = pred[masked], label[masked]
        return ((pred - label) ** 2).mean(), pred, label, mask

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask_ratio: float = 0.9,
                    mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Pixel reconstructions for visualization.

        Returns a dict: ``target`` the input frames the model predicts ([B, C, T', H, W]; every
        ``patch_stride[0]``-th frame for video), ``reconstruction`` the un-normalized prediction of every
        patch, ``pasted`` the target with masked patches replaced by their reconstruction, and
        ``pixel_mask`` (1 where the patch was hidden from the encoder, same shape with C = 1) and ``mask``.
        A model trained on HOG targets predicts no pixels: ValueError.
        """
        if self.target != "pixel":
            raise ValueError(f"a model with {self.target} targets predicts no pixels to reconstruct")
        latent, mask = self.forward_encoder(x, mask_ratio, mask)
        pred, kept = self.forward_decoder(latent, mask)
        label, mean, std = self.pixel_targets(x)
        if self.norm_pix_loss:
            pred = pred * std + mean
        batch = x.shape[0]
        target = self.unpatchify(self.patchify(x), batch)
        reconstruction = self.unpatchify(pred, batch)
        hidden = (~kept).to(x.dtype)[..., None].expand(-1, -1, pred.shape[-1])
        pixel_mask = self.unpatchify(hidden, batch)[:, :1]
        pasted = target * (1 - pixel_mask) + reconstruction * pixel_mask
        return {"target": target, "reconstruction": reconstruction, "pasted": pasted,
                "pixel_mask": pixel_mask, "mask": mask}
