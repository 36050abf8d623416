"""``TASK classification``: supervised video classification, tested with multi-view top-1 / top-5.

Testing takes TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views per video and sums their softmax.
Scores are keyed by video index and gathered from every process, so the videos the distributed sampler
repeats to pad its shards count once. Videos that fail to decode are counted and listed, never dropped
silently: ``metrics.json`` holds ``num_videos``, ``num_evaluated``, ``num_failed`` and ``failed``.
Image datasets (``imagenet``) go through the same code: an image is a "video" of TEST.NUM_SPATIAL_CROPS views
(one centre crop in the IN1K configs), and the image models take ``[B, C, H, W]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader

from hiera_video.datasets.batches import ClipBatch, ViewBatch
from hiera_video.datasets.mixup import MixupCutmix, smooth_one_hot
from hiera_video.models import create_model
from hiera_video.utils.json_io import dumps_strict

from ..data import per_process_test_clips
from ..distributed import DistributedContext, all_gather_objects
from ..logging import get_logger
from ..meters import classification_metrics
from ..preemption import PreemptionGuard
from ..testing_resume import ResumableTesting, restore_on_every_process, resumable_batches, resumable_testing
from ..view_scorer import ViewScorer
from .base import Evaluation, StepOutput, Task, hiera_overrides, model_input_size, register_task

LOSS_FUNCTIONS = ("soft_cross_entropy", "cross_entropy")
SUMMARY_KEYS = ("top1", "top5", "mean_class_acc", "num_videos", "num_failed")


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross entropy against soft targets [B, K] (mixup / label smoothing), in float32."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


@register_task("classification")
class ClassificationTask(Task):
    """Supervised video classification with soft cross entropy, mixup / cutmix and label smoothing."""

    has_test_stage = True
    compiles_for_testing = True

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """MODEL.LOSS_FUNC must be a classification loss, and test crops the size the model is built for."""
        if cfg.MODEL.LOSS_FUNC not in LOSS_FUNCTIONS:
            raise ValueError(f"MODEL.LOSS_FUNC '{cfg.MODEL.LOSS_FUNC}' does not fit TASK classification; use "
                             "soft_cross_entropy (label smoothing) or cross_entropy.")
        if cfg.DATA.TEST_CROP_SIZE != cfg.DATA.TRAIN_CROP_SIZE:
            raise ValueError(
                f"DATA.TEST_CROP_SIZE {cfg.DATA.TEST_CROP_SIZE} differs from DATA.TRAIN_CROP_SIZE "
                f"{cfg.DATA.TRAIN_CROP_SIZE}: a Hiera classifier is built for one input size; set them equal.")

    def __init__(self, cfg: CfgNode):
        super().__init__(cfg)
        self.check_config(cfg)
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

    def training_step(self, model: torch.nn.Module, batch: ClipBatch, device: torch.device) -> StepOutput:
        """Soft cross entropy of the (mixed) clips; training top-1 is logged when labels are not mixed."""
        clips, labels = batch.flat()
        clips = clips.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if self.mixup is not None:
            clips, targets = self.mixup(clips, labels)
        else:
            targets = smooth_one_hot(labels, self.cfg.MODEL.NUM_CLASSES, self.label_smoothing)
        logits = model(clips)
        stats = {}
        if self.mixup is None:
            stats["top1"] = (logits.argmax(dim=-1) == labels).float().mean() * 100.0
        return StepOutput(soft_cross_entropy(logits, targets), batch.num_clips, stats, batch.replaced_videos())

    def evaluate(self, model: torch.nn.Module, ctx: DistributedContext, split: str,
                 results_dir: Optional[str], checkpoint: Optional[str] = None,
                 preemption: Optional[PreemptionGuard] = None) -> Evaluation:
        """Multi-view top-1 / top-5 / mean class accuracy of ``split``; rank 0 writes ``metrics.json`` and
        ``predictions.npz`` to ``results_dir``. With ``preemption`` (and a ``results_dir``) testing is
        resumable: SIGTERM keeps the finished batches there (see :mod:`hiera_video.engine.testing_resume`)."""
        cfg = self.cfg
        loader = self.build_test_loader(ctx, split)
        resumable = resumable_testing(cfg, ctx.rank, ctx.world_size, split, results_dir, checkpoint,
                                      loader.batch_size, preemption)
        metrics, predictions = evaluate_views(cfg, model, loader, ctx, resumable)
        metrics["checkpoint"] = checkpoint
        if ctx.is_main and results_dir is not None:
            path = write_test_results(results_dir, metrics, predictions, dataset_paths(loader.dataset))
            get_logger().info(
                "%s (%d x %d views) of %d videos: top1 %.2f top5 %.2f mean class acc %.2f, %d failed -> %s",
                split, cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, metrics["num_videos"],
                metrics["top1"], metrics["top5"], metrics["mean_class_acc"], metrics["num_failed"], path)
        summary = {key: metrics[key] for key in SUMMARY_KEYS}
        return Evaluation(split, checkpoint, metrics, summary, results_dir)


def _scores_of(scorer: ViewScorer, video_labels: dict[int, int]) -> dict[int, tuple[torch.Tensor, int]]:
    """{video: (summed softmax [K], label)} of the videos scored; a row of its own per video (pickling a
    view would send the whole matrix)."""
    score_sums = scorer.finish()
    return {index: (score_sums[index].clone(), label) for index, label in video_labels.items()}


def _scores_payload(scores: dict[int, tuple[torch.Tensor, int]], failures: dict[int, dict]) -> dict[str, Any]:
    """The partial-file payload of classification testing (see :mod:`hiera_video.engine.testing_resume`)."""
    indices = sorted(scores)
    return {"index": torch.tensor(indices, dtype=torch.long),
            "scores": torch.stack([scores[i][0] for i in indices]) if indices else torch.zeros(0, 0),
            "label": torch.tensor([scores[i][1] for i in indices], dtype=torch.long), "failures": failures}


def _scores_from_payload(payload: Optional[dict[str, Any]]) -> tuple[dict[int, tuple[torch.Tensor, int]], dict]:
    """(scores, failures) saved by :func:`_scores_payload`; empty without a payload."""
    if payload is None:
        return {}, {}
    rows = zip(payload["index"].tolist(), payload["scores"], payload["label"].tolist())
    return {index: (row, label) for index, row, label in rows}, dict(payload["failures"])


def evaluate_views(cfg: CfgNode, model: torch.nn.Module, loader: DataLoader, ctx: DistributedContext,
                   resumable: Optional[ResumableTesting] = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score every video of ``loader`` (:class:`ViewBatch` batches) on every process; return (metrics,
    per-video predictions).

    Predictions hold ``index``, ``label`` and ``scores`` [N, K] sorted by video index (same on all ranks).
    With ``resumable``, batches saved by a preempted run are skipped and SIGTERM saves this run's (raising
    PreemptedInTesting); see :mod:`hiera_video.engine.testing_resume`.
    """
    model.eval()
    batches_done, payload = restore_on_every_process(resumable)
    saved_scores, failures = _scores_from_payload(payload)
    scorer = ViewScorer(model, per_process_test_clips(cfg, ctx.world_size), cfg.TRAIN.MIXED_PRECISION,
                        ctx.device, num_videos=len(loader.dataset))
    video_labels: dict[int, int] = {}  # videos scored by this run
    batch: ViewBatch
    for batch in resumable_batches(loader, ctx.is_main, batches_done, resumable, lambda: _scores_payload(
            {**saved_scores, **_scores_of(scorer, video_labels)}, failures)):
        for failure in batch.failed:
            failures[int(failure["index"])] = failure
        # A video this process already scored (sampler padding) counts once.
        new = torch.tensor([int(i) not in video_labels and int(i) not in saved_scores for i in batch.index],
                           dtype=torch.bool)
        if not new.all():
            batch = batch.select(new)
        if len(batch.index):
            scorer.add(batch.views, batch.index)
            video_labels.update(zip(batch.index.tolist(), batch.labels.tolist()))
    scores = {**saved_scores, **_scores_of(scorer, video_labels)}
    # Every process sees its shard; the union over processes keyed by index counts each video once.
    merged_scores: dict[int, tuple[torch.Tensor, int]] = {}
    merged_failures: dict[int, dict[str, Any]] = {}
    for part_scores, part_failures in all_gather_objects((scores, failures)):
        merged_scores.update(part_scores)
        merged_failures.update(part_failures)
    if resumable is not None:
        resumable.discard()  # every process has its scores in hand
    indices = sorted(merged_scores)
    score_matrix = torch.stack([merged_scores[i][0] for i in indices]) if indices else torch.zeros(0, 0)
    labels = torch.tensor([merged_scores[i][1] for i in indices], dtype=torch.long)
    num_videos = len(loader.dataset)
    metrics: dict[str, Any] = classification_metrics(score_matrix, labels)
    failed = [merged_failures[i] for i in sorted(merged_failures)]
    metrics.update(num_videos=num_videos, num_evaluated=len(indices), num_failed=len(failed), failed=failed)
    if num_videos:
        # The same top-1 with every failed video counted as a miss, so failures cannot flatter a result.
        correct = metrics["top1"] * len(indices) / 100.0 if indices else 0.0
        metrics["top1_failed_as_wrong"] = correct / num_videos * 100.0
    if len(indices) + len(failed) != num_videos:
        get_logger().error("Test covered %d + %d failed of %d videos: some videos were never scored.",
                           len(indices), len(failed), num_videos)
    predictions = {"index": np.array(indices, dtype=np.int64), "label": labels.numpy(),
                   "scores": score_matrix.numpy()}
    return metrics, predictions


def write_test_results(folder: str, metrics: dict[str, Any], predictions: dict[str, np.ndarray],
                       paths: Optional[list[str]] = None) -> Path:
    """Write ``metrics.json`` and ``predictions.npz`` (index, label, scores, path) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(dumps_strict(metrics, indent=2), encoding="utf-8")
    extra = {"path": np.array([paths[i] for i in predictions["index"]])} if paths else {}
    np.savez(folder / "predictions.npz", **predictions, **extra)
    return folder / "metrics.json"


def dataset_paths(dataset: torch.utils.data.Dataset) -> Optional[list[str]]:
    """Video paths of a dataset, when it exposes them (``dataset.video_paths``)."""
    paths = getattr(dataset, "video_paths", None)
    return list(paths) if paths is not None else None
