"""Optimizer and learning-rate schedule: AdamW/SGD with layer-wise lr decay, cosine with linear warmup.

Layer ids follow MAE / MAE-ST: position embeddings and the patch embedding are layer 0, block ``i`` is
layer ``i + 1``, everything after the blocks (norm, head, MAE decoder) is layer ``num_blocks + 1``; layer
``l`` gets ``LAYER_DECAY ** (num_blocks + 1 - l)`` times the lr. Norm weights, biases (1-D parameters)
and position embeddings / mask tokens get no weight decay.
"""
from __future__ import annotations

import math
import re

import torch
from fvcore.common.config import CfgNode

_BLOCK_PARAM = re.compile(r"^blocks\.(\d+)\.")
# Parameters that are vectors of positions or tokens rather than weights: never weight-decayed.
_NO_DECAY_NAMES = ("pos_embed", "mask_token", "cls_token")


def layer_id(param_name: str, num_blocks: int) -> int:
    """Layer index of a parameter for layer-wise lr decay (0 = input side, num_blocks + 1 = head side)."""
    # Detection models (HieraAVADetector) hold the Hiera backbone under "backbone.".
    param_name = param_name.removeprefix("backbone.")
    if param_name.startswith("patch_embed") or param_name.startswith("pos_embed"):
        return 0
    match = _BLOCK_PARAM.match(param_name)
    if match:
        return int(match.group(1)) + 1
    return num_blocks + 1


def skips_weight_decay(param_name: str, param: torch.Tensor) -> bool:
    """True for norms, biases (1-D) and position embeddings / tokens."""
    return param.ndim <= 1 or any(key in param_name.split(".")[-1] for key in _NO_DECAY_NAMES)


def param_groups(
    model: torch.nn.Module, weight_decay: float, layer_decay: float = 1.0, zero_wd_1d: bool = True
) -> list[dict]:
    """Parameter groups keyed by (layer, decay or not), each with ``lr_scale`` and ``weight_decay``."""
    num_blocks = len(model.blocks) if hasattr(model, "blocks") else 0
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = layer_id(name, num_blocks)
        no_decay = zero_wd_1d and skips_weight_decay(name, param)
        group = groups.setdefault(
            (layer, no_decay),
            {
                "params": [],
                "param_names": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr_scale": layer_decay ** (num_blocks + 1 - layer),
            },
        )
        group["params"].append(param)
        group["param_names"].append(name)
    return [groups[key] for key in sorted(groups)]


def base_learning_rate(cfg: CfgNode) -> float:
    """Peak lr: SOLVER.BASE_LR, times TRAIN.BATCH_SIZE / 256 when SOLVER.BASE_LR_SCALE_BATCH (MAE "blr")."""
    if cfg.SOLVER.BASE_LR_SCALE_BATCH:
        return cfg.SOLVER.BASE_LR * cfg.TRAIN.BATCH_SIZE / 256
    return cfg.SOLVER.BASE_LR


def build_optimizer(model: torch.nn.Module, cfg: CfgNode) -> torch.optim.Optimizer:
    """The optimizer named by SOLVER.OPTIMIZING_METHOD ("adamw" or "sgd") over layer-decayed groups."""
    groups = param_groups(model, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.LAYER_DECAY, cfg.SOLVER.ZERO_WD_1D_PARAM)
    lr = base_learning_rate(cfg)
    method = cfg.SOLVER.OPTIMIZING_METHOD.lower()
    if method == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.SOLVER.BETAS))
    if method == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.SOLVER.MOMENTUM, nesterov=True)
    raise ValueError(f"SOLVER.OPTIMIZING_METHOD must be 'adamw' or 'sgd', got '{cfg.SOLVER.OPTIMIZING_METHOD}'.")


class WarmupCosineSchedule:
    """Per-iteration lr: linear warmup from WARMUP_START_LR, then cosine down to COSINE_END_LR.

    ``lr_at(epoch_float)`` takes fractional epochs (``epoch + iteration / iters_per_epoch``), as PySlowFast.
    """

    def __init__(self, cfg: CfgNode):
        if cfg.SOLVER.LR_POLICY != "cosine":
            raise ValueError(f"SOLVER.LR_POLICY '{cfg.SOLVER.LR_POLICY}' is not supported; use 'cosine'.")
        self.peak_lr = base_learning_rate(cfg)
        self.warmup_epochs = cfg.SOLVER.WARMUP_EPOCHS
        self.warmup_start_lr = cfg.SOLVER.WARMUP_START_LR
        self.end_lr = cfg.SOLVER.COSINE_END_LR
        self.max_epoch = cfg.SOLVER.MAX_EPOCH

    def lr_at(self, epoch: float) -> float:
        """Learning rate at fractional epoch ``epoch``."""
        if epoch < self.warmup_epochs:
            return self.warmup_start_lr + (self.peak_lr - self.warmup_start_lr) * epoch / self.warmup_epochs
        span = max(self.max_epoch - self.warmup_epochs, 1e-8)
        progress = min((epoch - self.warmup_epochs) / span, 1.0)
        return self.end_lr + (self.peak_lr - self.end_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer, epoch: float) -> float:
        """Set every group's lr to ``lr_at(epoch) * lr_scale``; return the unscaled lr."""
        lr = self.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
