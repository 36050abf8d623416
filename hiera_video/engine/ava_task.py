"""AVA action detection as an engine task (``TASK ava``): RoI head on a Hiera backbone, sigmoid + BCE over
80 action ids, frame-mAP@0.5 with the ActivityNet evaluator (:mod:`hiera_video.evaluation.ava_testing`)."""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from .data import build_test_loader
from .distributed import DistributedContext, all_gather_objects
from .logging import get_logger
from .tasks import Task, hiera_overrides, model_input_size, register_task


@register_task("ava")
class AvaDetectionTask(Task):
    """Train on ground-truth boxes with binary cross entropy; test on detector proposals with frame-mAP."""

    has_test_stage = True

    def build_model(self) -> torch.nn.Module:
        """``create_ava_detector`` over MODEL.MODEL_NAME with HIERA.* overrides and MODEL.NUM_CLASSES ids."""
        from hiera_video.models.ava_head import create_ava_detector

        cfg = self.cfg
        return create_ava_detector(
            cfg.MODEL.MODEL_NAME,
            num_classes=cfg.MODEL.NUM_CLASSES,
            dropout_rate=cfg.MODEL.DROPOUT_RATE,
            input_size=model_input_size(cfg),
            drop_path_rate=cfg.MODEL.DROP_PATH_RATE,
            **hiera_overrides(cfg),
        )

    def load_pretrained(self, model: torch.nn.Module, path: str) -> None:
        """Initialize the backbone from a Kinetics / MAE checkpoint (its classifier is ignored)."""
        model.load_backbone_checkpoint(path)

    def training_step(self, model: torch.nn.Module, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict]:
        """Binary cross entropy of the box logits against the multi-hot labels [K, 80]."""
        logits = model(batch["clip"].to(device, non_blocking=True), batch["boxes"].to(device, non_blocking=True))
        loss = F.binary_cross_entropy_with_logits(logits.float(), batch["labels"].to(device).float())
        return loss, {"boxes": float(len(batch["boxes"]))}

    def evaluate(self, model: torch.nn.Module, ctx: DistributedContext, split: str,
                 results_dir: Optional[str], checkpoint: Optional[str] = None,
                 preemption: None = None) -> dict[str, Any]:
        """Detections of every process, gathered and scored on rank 0 (``ava_metrics.json``,
        ``ava_detections.csv`` in ``results_dir``); returns ``{"mAP", "num_failed", "checkpoint"}``."""
        from hiera_video.evaluation.ava_testing import evaluate_ava_predictions, predict_ava_detections

        rows, failed = predict_ava_detections(model, build_test_loader(self.cfg, ctx, split), ctx.device)
        gathered = all_gather_objects((rows, failed))
        metrics: dict[str, Any] = {"mAP": float("nan"), "num_failed": 0, "checkpoint": checkpoint}
        if ctx.is_main:
            all_rows = [row for part_rows, _ in gathered for row in part_rows]
            all_failed = list({(f["video_id"], f["timestamp"]): f for _, part in gathered for f in part}.values())
            result = evaluate_ava_predictions(self.cfg, all_rows, results_dir or self.cfg.OUTPUT_DIR, all_failed)
            metrics.update(mAP=result.mean_ap * 100.0, num_failed=len(all_failed))
            get_logger().info("AVA %s frame-mAP@0.5: %.2f (%d keyframes failed)", split, metrics["mAP"], len(all_failed))
        return all_gather_objects(metrics)[0]
