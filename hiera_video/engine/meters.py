"""Metrics: top-k and mean class accuracy of per-video scores, and running averages for logging."""
from __future__ import annotations

import torch


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Percent of rows of ``scores`` [N, K] whose label is among the ``k`` highest scores."""
    k = min(k, scores.shape[1])
    topk = scores.topk(k, dim=1).indices  # [N, k]
    return (topk == labels[:, None]).any(dim=1).float().mean().item() * 100.0


def mean_class_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy averaged over the classes that occur in ``labels``, in percent."""
    predictions = scores.argmax(dim=1)
    per_class = [
        (predictions[labels == c] == c).float().mean().item() for c in labels.unique().tolist()
    ]
    return sum(per_class) / len(per_class) * 100.0


def classification_metrics(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``top1``, ``top5`` and ``mean_class_acc`` (percent) of per-video scores [N, K] and labels [N]."""
    if len(labels) == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class_acc": float("nan")}
    return {
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "mean_class_acc": mean_class_accuracy(scores, labels),
    }


class AverageMeter:
    """Running sum and count of a scalar, with the mean since the last reset."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def update(self, value: float, n: int = 1) -> None:
        """Add ``value`` observed ``n`` times."""
        self.total += value * n
        self.count += n

    @property
    def mean(self) -> float:
        """Mean of the values added (NaN before any)."""
        return self.total / self.count if self.count else float("nan")
