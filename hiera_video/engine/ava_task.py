"""AVA action detection as an engine task (``TASK ava``): RoI head on a Hiera backbone, sigmoid + BCE over
80 action ids, frame-mAP@0.5 with the ActivityNet evaluator (:mod:`hiera_video.evaluation.ava_testing`)."""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from .data import build_test_loader
from .distributed import DistributedContext, all_gather_objects
from .logging import get_logger
from .preemption import PreemptionGuard
from .tasks import Task, hiera_overrides, model_input_size, register_task
from .testing_resume import restore_on_every_process, resumable_batches, resumable_testing


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
                 preemption: Optional[PreemptionGuard] = None) -> dict[str, Any]:
        """Detections of every process, gathered and scored on rank 0 (``ava_metrics.json``,
        ``ava_detections.csv`` in ``results_dir``); returns ``{"mAP", "num_failed", "checkpoint"}``. With
        ``preemption``, SIGTERM keeps the finished batches for the next run (:mod:`testing_resume`)."""
        from hiera_video.evaluation.ava_testing import AvaPredictions, evaluate_ava_predictions, predict_ava_batch

        loader = build_test_loader(self.cfg, ctx, split)
        resumable = resumable_testing(self.cfg, ctx.rank, ctx.world_size, split, results_dir, checkpoint,
                                      loader.batch_size, preemption)
        batches_done, payload = restore_on_every_process(resumable)
        parts = [AvaPredictions.from_state(payload)] if payload is not None else []
        for batch in resumable_batches(loader, ctx.is_main, batches_done, resumable,
                                       lambda: AvaPredictions.concat(parts).state()):
            parts.append(predict_ava_batch(model, batch, ctx.device))
        gathered = all_gather_objects(AvaPredictions.concat(parts))
        if resumable is not None:
            resumable.discard()  # every process has its predictions in hand
        metrics: dict[str, Any] = {"mAP": float("nan"), "num_failed": 0, "checkpoint": checkpoint}
        if ctx.is_main:
            predictions = AvaPredictions.concat(gathered)
            result = evaluate_ava_predictions(self.cfg, predictions, results_dir or self.cfg.OUTPUT_DIR)
            num_failed = len({(f["video_id"], int(f["timestamp"])) for f in predictions.failed})
            metrics.update(mAP=result.mean_ap * 100.0, num_failed=num_failed)
            get_logger().info("AVA %s frame-mAP@0.5: %.2f (%d keyframes failed)", split, metrics["mAP"], num_failed)
        return all_gather_objects(metrics)[0]
