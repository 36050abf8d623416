"""Action detection on AVA: a Hiera backbone with PySlowFast's RoI head.

The head follows PySlowFast's ``ResNetRoIHead`` as used for AVA: the last stage's feature map is
averaged over time, RoIAlign (7x7, aligned, ``sampling_ratio=0``, ``spatial_scale = 1 / stride``) cuts one
feature map per person box, a spatial max-pool makes it a vector, then dropout and a linear layer give one
logit per action id (80, index = id - 1). Sigmoid and binary cross-entropy belong outside
(``torch.nn.BCEWithLogitsLoss``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.ops import roi_align

from hiera_video.models.checkpoint import LoadResult, load_checkpoint
from hiera_video.models.registry import create_model


class AVAHead(nn.Module):
    """RoI head: feature map [B, T', H', W', C] and boxes [K, 5] -> logits [K, num_classes].

    Args:
        in_dim: channels C of the feature map.
        num_classes: outputs (80 AVA action ids).
        feature_stride: input pixels per feature-map cell (32 for Hiera's last stage).
        roi_size: RoIAlign output size per side.
        dropout_rate: dropout before the linear layer (PySlowFast: 0.5).
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int = 80,
        feature_stride: int = 32,
        roi_size: int = 7,
        dropout_rate: float = 0.5,
    ):
        super().__init__()
        self.feature_stride = feature_stride
        self.roi_size = roi_size
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.projection = nn.Linear(in_dim, num_classes)

    def pool_boxes(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """One vector per box: [B, T', H', W', C] and [K, 5] -> [K, C] (time mean, RoIAlign, spatial max)."""
        if features.dim() != 5:
            raise ValueError(f"AVAHead expects a feature map [B, T', H', W', C], got shape {tuple(features.shape)}")
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                "AVAHead expects boxes [K, 5] = (batch_index, x1, y1, x2, y2) in input pixels, "
                f"got {tuple(boxes.shape)}"
            )
        # [B, T', H', W', C] -> [B, C, H', W']
        frame = features.mean(dim=1).permute(0, 3, 1, 2)
        regions = roi_align(
            frame,
            boxes.to(frame.dtype),
            output_size=self.roi_size,
            spatial_scale=1.0 / self.feature_stride,
            sampling_ratio=0,
            aligned=True,
        )
        # [K, C, roi, roi] -> [K, C]
        return regions.amax(dim=(2, 3))

    def forward(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Logits [K, num_classes] for ``boxes`` [K, 5] = (batch_index, x1, y1, x2, y2) in input pixels."""
        return self.projection(self.dropout(self.pool_boxes(features, boxes)))


class HieraAVADetector(nn.Module):
    """A Hiera video backbone and an :class:`AVAHead` (``roi_head``) on its last stage.

    The backbone's classifier is replaced by an identity: detection does not use it, and parameters
    without gradients would stop DistributedDataParallel. The backbone's final LayerNorm normalizes the
    last feature map (its pretrained weights carry over from classification). Parameter names are
    ``backbone.*`` and ``roi_head.*``: initialize from a Kinetics / MAE checkpoint with
    :meth:`load_backbone_checkpoint` (or ``create_ava_detector(..., checkpoint=...)``); the detector's own
    checkpoints load with ``load_checkpoint(detector, path)``.
    """

    def __init__(self, backbone: nn.Module, head: AVAHead):
        super().__init__()
        backbone.head = nn.Identity()
        self.backbone = backbone
        # Not "head": a classification checkpoint's head.* keys must never land in the detection head.
        self.roi_head = head

    def load_backbone_checkpoint(self, path: str) -> LoadResult:
        """Initialize the backbone from a classification or MAE checkpoint (its classifier is ignored)."""
        return load_checkpoint(self.backbone, path)

    @property
    def blocks(self) -> nn.ModuleList:
        """The backbone's blocks (layer-wise lr decay counts them; parameter names carry ``backbone.``)."""
        return self.backbone.blocks

    def set_activation_checkpointing(self, enabled: bool = True) -> None:
        """Recompute the backbone's blocks in the backward pass to save memory."""
        self.backbone.set_activation_checkpointing(enabled)

    @property
    def input_size(self) -> tuple:
        """The clip size (T, H, W) the backbone was built for."""
        return self.backbone.input_size

    def forward(self, clips: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Logits [K, num_classes] for clips [B, C, T, H, W] and boxes [K, 5] (batch_index, x1, y1, x2, y2)."""
        _, stage_maps = self.backbone(clips, return_intermediates=True)
        features = self.backbone.norm(stage_maps[-1])
        return self.roi_head(features, boxes)


def backbone_feature_stride(backbone: nn.Module) -> int:
    """Input pixels per cell of the last stage's map: patch stride x pooling stride ** pooled transitions."""
    return int(backbone.patch_stride[-1] * backbone.q_stride[-1] ** backbone.q_pool)


def create_ava_detector(
    model_name: str,
    checkpoint: str | None = None,
    num_classes: int = 80,
    dropout_rate: float = 0.5,
    **overrides,
) -> HieraAVADetector:
    """Build ``model_name`` (e.g. ``"hiera_large_16x224"``), load ``checkpoint`` (a Kinetics or MAE
    checkpoint: its classifier is dropped) and attach a fresh :class:`AVAHead`.

    ``overrides`` are the backbone's constructor arguments (``input_size``, ``drop_path_rate``, ...).
    """
    backbone = create_model(model_name, checkpoint=checkpoint, **overrides)
    head = AVAHead(
        backbone.num_features,
        num_classes=num_classes,
        feature_stride=backbone_feature_stride(backbone),
        dropout_rate=dropout_rate,
    )
    return HieraAVADetector(backbone, head)
