"""``TASK ava``: AVA action detection. RoI head on a Hiera backbone, sigmoid + binary cross entropy over the
80 action ids, frame-mAP@0.5 with the ActivityNet evaluator (:mod:`hiera_video.evaluation.ava_testing`)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from hiera_video.datasets.batches import AvaBatch

from ..distributed import DistributedContext, all_gather_objects
from ..logging import get_logger
from ..preemption import PreemptionGuard
from ..testing_resume import restore_on_every_process, resumable_batches, resumable_testing
from .base import Evaluation, StepOutput, Task, hiera_overrides, model_input_size, register_task


@register_task("ava")
class AvaDetectionTask(Task):
    """Train on ground-truth boxes with binary cross entropy; test on detector proposals with frame-mAP."""

    has_test_stage = True

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """AVA's actions are multi-label: MODEL.LOSS_FUNC must be ``bce``."""
        if cfg.MODEL.LOSS_FUNC != "bce":
            raise ValueError(f"MODEL.LOSS_FUNC '{cfg.MODEL.LOSS_FUNC}' does not fit TASK ava: its actions are "
                             "multi-label, scored with sigmoid + binary cross entropy; set MODEL.LOSS_FUNC bce.")

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

    def training_step(self, model: torch.nn.Module, batch: AvaBatch, device: torch.device) -> StepOutput:
        """Binary cross entropy of the box logits against the multi-hot labels [K, 80]."""
        logits = model(batch.clips.to(device, non_blocking=True), batch.boxes.to(device, non_blocking=True))
        loss = F.binary_cross_entropy_with_logits(logits.float(), batch.labels.to(device).float())
        return StepOutput(loss, len(batch.clips), {"boxes": float(len(batch.boxes))}, batch.replaced_videos())

    def evaluate(self, model: torch.nn.Module, ctx: DistributedContext, split: str,
                 results_dir: Optional[str], checkpoint: Optional[str] = None,
                 preemption: Optional[PreemptionGuard] = None) -> Evaluation:
        """Detections of every process, gathered and scored on rank 0 (``ava_metrics.json``,
        ``ava_detections.csv`` in ``results_dir``, else OUTPUT_DIR). Metrics: ``mAP`` (percent),
        ``num_keyframes``, ``num_failed`` and the ``failed`` keyframes (``video_id,timestamp``)."""
        from hiera_video.evaluation.ava_testing import AvaPredictions, evaluate_ava_predictions, predict_ava_batch

        loader = self.build_test_loader(ctx, split)
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
        metrics = {"mAP": float("nan"), "num_keyframes": len(loader.dataset), "num_failed": 0, "failed": [],
                   "checkpoint": checkpoint}
        if ctx.is_main:
            predictions = AvaPredictions.concat(gathered)
            result = evaluate_ava_predictions(self.cfg, predictions, results_dir or self.cfg.OUTPUT_DIR)
            failed = sorted({f"{f['video_id']},{int(f['timestamp']):04d}" for f in predictions.failed})
            metrics.update(mAP=result.mean_ap * 100.0, num_failed=len(failed), failed=failed)
            get_logger().info("AVA %s frame-mAP@0.5: %.2f (%d of %d keyframes failed)", split, metrics["mAP"],
                              len(failed), len(loader.dataset))
        metrics = all_gather_objects(metrics)[0]
        summary = {key: metrics[key] for key in ("mAP", "num_keyframes", "num_failed")}
        return Evaluation(split, checkpoint, metrics, summary, results_dir)
