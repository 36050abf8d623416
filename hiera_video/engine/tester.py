"""Multi-view testing: TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views per video, softmax scores
summed per video, top-1 / top-5 / mean class accuracy.

Scores are keyed by video index and gathered from every process, so the videos the distributed sampler
repeats to pad its shards count once. Videos that fail to decode are counted and listed, never dropped
silently: ``metrics.json`` holds ``num_videos``, ``num_evaluated``, ``num_failed`` and ``failed``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from fvcore.common.config import CfgNode

from .checkpoint import find_latest_checkpoint
from .data import build_test_loader, per_process_test_clips
from .distributed import DistributedContext, all_gather_objects
from .logging import get_logger
from .meters import classification_metrics
from .tasks import get_task
from .precision import autocast_context
from .preemption import PreemptionGuard
from .testing_resume import ResumableTesting, restore_on_every_process, resumable_batches, resumable_testing


class ViewScorer:
    """Sums the softmax of every view per video, feeding the model full passes of ``clips_per_pass`` views.

    Views of consecutive videos share a pass (a video's views may span two), so the model always sees
    full batches whatever the ratio of TEST.BATCH_SIZE to the views per video. Each loader batch goes to
    the device once (non-blocking from pinned memory) and the per-video sums stay there until
    :meth:`finish`: the loop never waits for the device (no ``.cpu()`` / ``.item()`` per pass or batch).
    """

    def __init__(self, model: torch.nn.Module, clips_per_pass: int, precision: str, device: torch.device,
                 num_videos: int):
        self.model, self.clips_per_pass, self.precision, self.device = model, clips_per_pass, precision, device
        self.num_videos = num_videos
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # (views [n, C, T, H, W], video [n])
        self.num_pending = 0
        self.sums: Optional[torch.Tensor] = None  # [num_videos, num_classes] on the device, after a pass

    def add(self, views: torch.Tensor, video_indices: torch.Tensor) -> None:
        """Queue views [B, V, C, T, H, W] of the videos ``video_indices`` [B]; run every full pass."""
        flat = views.flatten(0, 1).to(self.device, non_blocking=True)  # [B, V, ...] -> [B*V, ...]
        owners = video_indices.to(self.device, non_blocking=True).repeat_interleave(views.shape[1])  # [B*V]
        self.pending.append((flat, owners))
        self.num_pending += len(flat)
        while self.num_pending >= self.clips_per_pass:
            self._run_pass(*self._take(self.clips_per_pass))

    def finish(self) -> torch.Tensor:
        """Run the last (partial) pass; the summed scores [num_videos, num_classes] on the CPU (one copy).
        Rows of videos never added are zero."""
        if self.num_pending:
            self._run_pass(*self._take(self.num_pending))
        return self.sums.cpu() if self.sums is not None else torch.zeros(self.num_videos, 0)

    def _take(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``count`` pending views and their videos; slices when they lie in one batch, else a copy."""
        views, owners, taken = [], [], 0
        while taken < count:
            piece_views, piece_owners = self.pending[0]
            needed = count - taken
            if len(piece_views) > needed:
                self.pending[0] = (piece_views[needed:], piece_owners[needed:])
                piece_views, piece_owners = piece_views[:needed], piece_owners[:needed]
            else:
                self.pending.pop(0)
            views.append(piece_views)
            owners.append(piece_owners)
            taken += len(piece_views)
        self.num_pending -= count
        if len(views) == 1:
            return views[0], owners[0]
        return torch.cat(views), torch.cat(owners)

    @torch.no_grad()
    def _run_pass(self, views: torch.Tensor, owners: torch.Tensor) -> None:
        with autocast_context(self.precision, self.device):
            logits = self.model(views)
        probabilities = logits.float().softmax(dim=-1)  # [n, num_classes]
        if self.sums is None:
            self.sums = probabilities.new_zeros(self.num_videos, probabilities.shape[1])
        self.sums.index_add_(0, owners, probabilities)


def _scores_of(scorer: ViewScorer, video_labels: dict[int, int]) -> dict[int, tuple[torch.Tensor, int]]:
    """{video: (summed softmax [K], label)} of the videos scored; a row of its own per video (pickling a
    view would send the whole matrix)."""
    score_sums = scorer.finish()
    return {index: (score_sums[index].clone(), label) for index, label in video_labels.items()}


def _scores_payload(scores: dict[int, tuple[torch.Tensor, int]], failures: dict[int, dict]) -> dict[str, Any]:
    """The partial-file payload of classification testing (see :mod:`testing_resume`)."""
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


def evaluate(cfg: CfgNode, model: torch.nn.Module, loader: torch.utils.data.DataLoader,
             ctx: DistributedContext, resumable: Optional[ResumableTesting] = None,
             ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score every video of ``loader`` on every process; return (metrics, per-video predictions).

    Predictions hold ``index``, ``label`` and ``scores`` [N, K] sorted by video index (same on all ranks).
    With ``resumable``, batches saved by a preempted run are skipped and SIGTERM saves this run's (raising
    PreemptedInTesting); see :mod:`testing_resume`.
    """
    model.eval()
    batches_done, payload = restore_on_every_process(resumable)
    saved_scores, failures = _scores_from_payload(payload)
    scorer = ViewScorer(model, per_process_test_clips(cfg, ctx.world_size), cfg.TRAIN.MIXED_PRECISION,
                        ctx.device, num_videos=len(loader.dataset))
    video_labels: dict[int, int] = {}  # videos scored by this run
    for batch in resumable_batches(loader, ctx.is_main, batches_done, resumable, lambda: _scores_payload(
            {**saved_scores, **_scores_of(scorer, video_labels)}, failures)):
        for failure in batch.get("failed", []):  # {"index", "path", "error", "label"}
            failures[int(failure["index"])] = failure
        # A video this process already scored (sampler padding) counts once.
        new = torch.tensor([int(i) not in video_labels and int(i) not in saved_scores for i in batch["index"]],
                           dtype=torch.bool)
        if not new.all():
            batch = {"views": batch["views"][new], "index": batch["index"][new], "label": batch["label"][new]}
        if len(batch["index"]):
            scorer.add(batch["views"], batch["index"])
            video_labels.update(zip(batch["index"].tolist(), batch["label"].tolist()))
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
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    with open(folder / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(clean, f, indent=2)
    extra = {"path": np.array([paths[i] for i in predictions["index"]])} if paths else {}
    np.savez(folder / "predictions.npz", **predictions, **extra)
    return folder / "metrics.json"


def choose_test_checkpoint(cfg: CfgNode) -> Optional[str]:
    """TEST.CHECKPOINT_FILE_PATH, else the latest checkpoint in OUTPUT_DIR, else None when
    TEST.ALLOW_RANDOM_INIT; otherwise a clear error (a random model's metrics mean nothing)."""
    if cfg.TEST.CHECKPOINT_FILE_PATH:
        return cfg.TEST.CHECKPOINT_FILE_PATH
    latest = find_latest_checkpoint(cfg.OUTPUT_DIR)
    if latest is not None:
        return str(latest)
    if cfg.TEST.ALLOW_RANDOM_INIT:
        return None
    raise FileNotFoundError(
        f"Nothing to test: TEST.CHECKPOINT_FILE_PATH is empty and {cfg.OUTPUT_DIR}/checkpoints has no "
        "checkpoint. Give a checkpoint, train first, or set TEST.ALLOW_RANDOM_INIT True to measure an "
        "untrained model on purpose."
    )


def dataset_paths(dataset: torch.utils.data.Dataset) -> Optional[list[str]]:
    """Video paths of a dataset, when it exposes them (``dataset.video_paths``)."""
    paths = getattr(dataset, "video_paths", None)
    return list(paths) if paths is not None else None


def evaluate_classifier(cfg: CfgNode, model: torch.nn.Module, ctx: DistributedContext, split: str,
                        results_dir: Optional[str], checkpoint: Optional[str] = None,
                        preemption: Optional[PreemptionGuard] = None) -> dict[str, Any]:
    """Multi-view classification metrics of ``split`` (with the tested ``checkpoint``); rank 0 writes them
    and the predictions to ``results_dir``. With ``preemption`` (and a ``results_dir``) testing is
    resumable: SIGTERM keeps the finished batches there (see :mod:`testing_resume`)."""
    loader = build_test_loader(cfg, ctx, split)
    resumable = resumable_testing(cfg, ctx.rank, ctx.world_size, split, results_dir, checkpoint, loader.batch_size,
                                  preemption)
    metrics, predictions = evaluate(cfg, model, loader, ctx, resumable)
    metrics["checkpoint"] = checkpoint
    if ctx.is_main and results_dir is not None:
        path = write_test_results(results_dir, metrics, predictions, dataset_paths(loader.dataset))
        get_logger().info(
            "%s (%d x %d views) of %d videos: top1 %.2f top5 %.2f mean class acc %.2f, %d failed -> %s", split,
            cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, metrics["num_videos"], metrics["top1"],
            metrics["top5"], metrics["mean_class_acc"], metrics["num_failed"], path)
    return metrics


def test(cfg: CfgNode, ctx: DistributedContext) -> dict[str, Any]:
    """Load the checkpoint to test and evaluate the TEST.SPLIT list with the task's metric; rank 0 writes
    the results to ``OUTPUT_DIR/test``. Returns the metrics (with the tested ``checkpoint``)."""
    logger = get_logger()
    task = get_task(cfg)
    model = task.build_model()
    checkpoint = choose_test_checkpoint(cfg)
    if checkpoint is None:
        logger.warning("TEST.ALLOW_RANDOM_INIT: testing an untrained model.")
    else:
        from hiera_video.models import load_checkpoint

        load_checkpoint(model, checkpoint)
        logger.info("Testing %s", checkpoint)
    with PreemptionGuard(action="stopping after the current batch to keep the results so far") as preemption:
        return task.evaluate(model.to(ctx.device), ctx, cfg.TEST.SPLIT, str(Path(cfg.OUTPUT_DIR) / "test"),
                             checkpoint, preemption=preemption)
