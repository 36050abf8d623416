"""Tasks: what a training step computes for each ``TASK`` ("classification", "mae", ...).

A task builds its model from the config and turns a batch into a loss; the trainer does the rest
(optimizer, precision, accumulation, logging, checkpoints). A new task is a new class registered with
``@register_task("name")``, not another branch in the loop.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from hiera_video.datasets.mixup import MixupCutmix, smooth_one_hot
from hiera_video.models import create_model, load_checkpoint

from .distributed import DistributedContext
from .preemption import PreemptionGuard

_TASKS: dict[str, type["Task"]] = {}


def register_task(name: str) -> Callable[[type["Task"]], type["Task"]]:
    """Class decorator registering a Task under the ``TASK`` config value ``name``."""

    def decorator(cls: type["Task"]) -> type["Task"]:
        _TASKS[name] = cls
        return cls

    return decorator


def get_task(cfg: CfgNode) -> "Task":
    """The Task named by ``cfg.TASK``."""
    if cfg.TASK not in _TASKS:
        raise ValueError(f"TASK '{cfg.TASK}' has no registered task; known: {sorted(_TASKS)}.")
    return _TASKS[cfg.TASK](cfg)


def hiera_overrides(cfg: CfgNode) -> dict[str, Any]:
    """Constructor arguments from the HIERA.* keys that are set (empty / zero / -1 keep the named model's)."""
    h = cfg.HIERA
    overrides: dict[str, Any] = {}
    for key, arg in (("EMBED_DIM", "embed_dim"), ("NUM_HEADS", "num_heads")):
        if h[key] > 0:
            overrides[arg] = h[key]
    if h.Q_POOL >= 0:
        overrides["q_pool"] = h.Q_POOL
    if h.MLP_RATIO > 0:
        overrides["mlp_ratio"] = h.MLP_RATIO
    for key, arg in (("STAGES", "stages"), ("Q_STRIDE", "q_stride"), ("MASK_UNIT_SIZE", "mask_unit_size"),
                     ("MASK_UNIT_ATTN", "mask_unit_attn"), ("PATCH_KERNEL", "patch_kernel"),
                     ("PATCH_STRIDE", "patch_stride"), ("PATCH_PADDING", "patch_padding")):
        if len(h[key]) > 0:
            overrides[arg] = tuple(h[key])
    return overrides


def model_input_size(cfg: CfgNode) -> tuple[int, int, int]:
    """(T, H, W) of the model input: DATA.NUM_FRAMES frames of DATA.TRAIN_CROP_SIZE squares."""
    return (cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TRAIN_CROP_SIZE)


def flatten_repeated_samples(clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeated augmentation: [B, S, C, T, H, W] clips -> [B*S, C, T, H, W], labels repeated per sample."""
    if clips.ndim == 6:
        num_samples = clips.shape[1]
        return clips.flatten(0, 1), labels.repeat_interleave(num_samples)
    return clips, labels


def clips_in_batch(batch: dict) -> int:
    """Clips a training batch feeds the model (videos x repeated-augmentation samples)."""
    clips = batch["clip"]
    return clips.shape[0] * (clips.shape[1] if clips.ndim == 6 else 1)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross entropy against soft targets [B, K] (mixup / label smoothing), in float32."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


class Task(ABC):
    """Base class: build a model from the config and compute a training loss from a batch."""

    #: Whether the task has a test stage (``TEST.ENABLE``) and validation (``TRAIN.EVAL_PERIOD``).
    has_test_stage = False

    def __init__(self, cfg: CfgNode):
        self.cfg = cfg

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        """A fresh model for this task."""

    def load_pretrained(self, model: torch.nn.Module, path: str) -> None:
        """Initialize ``model`` from a checkpoint of another job (TRAIN.CHECKPOINT_FILE_PATH)."""
        load_checkpoint(model, path)

    def evaluate(self, model: torch.nn.Module, ctx: DistributedContext, split: str,
                 results_dir: Optional[str], checkpoint: Optional[str] = None,
                 preemption: Optional[PreemptionGuard] = None) -> dict[str, Any]:
        """Score ``split`` on every process; rank 0 writes result files (naming the tested ``checkpoint``)
        to ``results_dir`` (None: none). Returns the metrics. With ``preemption`` (the test stage), SIGTERM
        keeps the finished batches for the next run (see :mod:`testing_resume`)."""
        raise TypeError(f"TASK '{self.cfg.TASK}' has no test stage; set TEST.ENABLE False.")

    @abstractmethod
    def training_step(self, model: torch.nn.Module, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict]:
        """Return (loss, scalars to log) for one batch; scalars may be 0-dim tensors on the device (the trainer
        reads them with the loss, in the iteration's one host sync)."""


@register_task("classification")
class ClassificationTask(Task):
    """Supervised video classification with soft cross entropy, mixup / cutmix and label smoothing."""

    has_test_stage = True

    def __init__(self, cfg: CfgNode):
        super().__init__(cfg)
        if cfg.MODEL.LOSS_FUNC not in ("soft_cross_entropy", "cross_entropy"):
            raise ValueError(f"MODEL.LOSS_FUNC '{cfg.MODEL.LOSS_FUNC}' does not fit TASK classification; use "
                             "soft_cross_entropy (label smoothing) or cross_entropy.")
        self.mixup = MixupCutmix.from_cfg(cfg) if cfg.MIXUP.ENABLE else None
        self.label_smoothing = cfg.MIXUP.LABEL_SMOOTH_VALUE if cfg.MODEL.LOSS_FUNC == "soft_cross_entropy" else 0.0

    def build_model(self) -> torch.nn.Module:
        """The classifier ``MODEL.MODEL_NAME`` with HIERA.* overrides, MODEL.NUM_CLASSES outputs."""
        cfg = self.cfg
        return create_model(
            cfg.MODEL.MODEL_NAME,
            num_classes=cfg.MODEL.NUM_CLASSES,
            input_size=model_input_size(cfg),
            drop_path_rate=cfg.MODEL.DROP_PATH_RATE,
            head_dropout=cfg.MODEL.DROPOUT_RATE,
            **hiera_overrides(cfg),
        )

    def training_step(self, model: torch.nn.Module, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict]:
        """Soft cross entropy of the (mixed) clips; training top-1 is logged when labels are not mixed."""
        clips, labels = flatten_repeated_samples(batch["clip"], batch["label"])
        clips = clips.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if self.mixup is not None:
            clips, targets = self.mixup(clips, labels)
        else:
            targets = smooth_one_hot(labels, self.cfg.MODEL.NUM_CLASSES, self.label_smoothing)
        logits = model(clips)
        loss = soft_cross_entropy(logits, targets)
        stats = {}
        if self.mixup is None:
            stats["top1"] = (logits.argmax(dim=-1) == labels).float().mean() * 100.0
        return loss, stats

    def evaluate(self, model: torch.nn.Module, ctx: DistributedContext, split: str,
                 results_dir: Optional[str], checkpoint: Optional[str] = None,
                 preemption: Optional[PreemptionGuard] = None) -> dict[str, Any]:
        """Multi-view top-1 / top-5 / mean class accuracy; writes metrics.json and predictions.npz. With
        ``preemption``, SIGTERM keeps the finished batches for the next run (:mod:`testing_resume`)."""
        from .tester import evaluate_classifier

        return evaluate_classifier(self.cfg, model, ctx, split, results_dir, checkpoint, preemption)


@register_task("mae")
class MaskedAutoencoderTask(Task):
    """MAE pretraining: reconstruct the normalized pixels of hidden mask units (MAE.MASK_RATIO hidden)."""

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

    def training_step(self, model: torch.nn.Module, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict]:
        """The MAE reconstruction loss of the batch's clips (labels are ignored)."""
        clips, _ = flatten_repeated_samples(batch["clip"], batch["label"])
        loss, _, _, _ = model(clips.to(device, non_blocking=True), mask_ratio=self.cfg.MAE.MASK_RATIO)
        return loss, {}
