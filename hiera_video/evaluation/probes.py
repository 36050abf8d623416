"""How good are frozen features? k-NN and linear probes over the embeddings of ``tools/extract_features.py``.

- :func:`knn_scores`: DINO's weighted k-NN (Caron et al. 2021): cosine similarity to every training
  feature, the ``k`` nearest (default 20) vote for their class with weight ``exp(similarity / T)``
  (default T = 0.07).
- :func:`train_linear_probe`: MAE's linear probe (He et al. 2022): ``BatchNorm1d(affine=False)`` (no
  learned scale, so it is a linear map folded into the classifier) then one ``Linear`` layer, trained with
  SGD (momentum 0.9), cosine learning rate after a warmup, weight decay.
- :func:`run_probe` scores a test set with either and reports top-1 / top-5 accuracy in percent.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from hiera_video.utils.errors import UserError

METHODS = ("knn", "linear")


class ProbeInputError(UserError, ValueError):
    """Features a probe cannot use: no labels, no videos, or train and test of different sizes."""


@dataclass(frozen=True)
class LinearProbeOptions:
    """Training of the linear probe: ``epochs`` over the training features in batches of ``batch_size``,
    SGD with ``lr`` (peak, after ``warmup_epochs``), cosine decay to 0, ``weight_decay``, ``seed``."""

    epochs: int = 100
    lr: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 256
    warmup_epochs: int = 10
    seed: int = 0


@torch.no_grad()
def knn_scores(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
               num_classes: int, k: int = 20, temperature: float = 0.07, chunk_size: int = 1024) -> torch.Tensor:
    """Class votes ``[N_test, num_classes]`` of each test feature's ``k`` most cosine-similar training
    features, each weighted ``exp(similarity / temperature)`` (test features ``chunk_size`` at a time)."""
    if k < 1 or temperature <= 0:
        raise ProbeInputError(f"k must be at least 1 and the temperature positive, got k={k}, T={temperature}")
    train = F.normalize(train_features.float(), dim=1)
    k = min(k, len(train))
    scores = []
    for chunk in F.normalize(test_features.float(), dim=1).split(chunk_size):
        similarity, neighbours = (chunk @ train.T).topk(k, dim=1)  # [n, k] each
        votes = torch.zeros(len(chunk), num_classes)
        votes.scatter_add_(1, train_labels[neighbours], (similarity / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def linear_probe_model(dim: int, num_classes: int) -> torch.nn.Module:
    """MAE's linear probe head: ``BatchNorm1d(dim, affine=False)`` then ``Linear(dim, num_classes)``."""
    return torch.nn.Sequential(torch.nn.BatchNorm1d(dim, affine=False, eps=1e-6), torch.nn.Linear(dim, num_classes))


def _learning_rate(options: LinearProbeOptions, epoch: float) -> float:
    """Linear warmup to ``options.lr`` over ``warmup_epochs``, then half-cosine decay to 0 (MAE's schedule)."""
    warmup = min(options.warmup_epochs, options.epochs - 1)
    if epoch < warmup:
        return options.lr * epoch / warmup
    progress = (epoch - warmup) / max(options.epochs - warmup, 1)
    return options.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def train_linear_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                       options: LinearProbeOptions = LinearProbeOptions()) -> torch.nn.Module:
    """Train :func:`linear_probe_model` on frozen ``features`` ``[N, D]`` with integer ``labels`` ``[N]``
    (cross entropy, SGD as in ``options``); returns it in eval mode."""
    generator = torch.Generator().manual_seed(options.seed)
    torch.manual_seed(options.seed)
    model = linear_probe_model(features.shape[1], num_classes)
    torch.nn.init.trunc_normal_(model[1].weight, std=0.01)  # MAE's init of the probe's classifier
    torch.nn.init.zeros_(model[1].bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=options.lr, momentum=0.9, weight_decay=options.weight_decay)
    batches_per_epoch = math.ceil(len(features) / options.batch_size)
    model.train()
    for epoch in range(options.epochs):
        order = torch.randperm(len(features), generator=generator)
        for step, batch in enumerate(order.split(options.batch_size)):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(options, epoch + step / batches_per_epoch)
            if len(batch) < 2:  # BatchNorm needs two samples to normalize a batch
                continue
            loss = F.cross_entropy(model(features[batch].float()), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def top_k_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """``{"top1": %, "top5": %}``: how often the label is among the ``k`` highest scores (k capped at the
    number of classes)."""
    result = {}
    for k in ks:
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        result[f"top{k}"] = round(100.0 * float((top == labels[:, None]).any(dim=1).float().mean()), 4)
    return result


def _labelled(features, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a :class:`~hiera_video.inference.features.FeatureSet` as tensors."""
    if features.labels is None:
        raise ProbeInputError(f"the {name} features have no labels: extract them from a dataset split "
                              "(tools/extract_features.py --cfg CFG --split ...)")
    if len(features.features) == 0:
        raise ProbeInputError(f"the {name} features hold no videos")
    return torch.from_numpy(np.asarray(features.features, np.float32)), torch.from_numpy(
        np.asarray(features.labels, np.int64))


def run_probe(train, test, method: str = "knn", k: int = 20, temperature: float = 0.07,
              linear: LinearProbeOptions = LinearProbeOptions(), num_classes: Optional[int] = None) -> dict:
    """Fit ``method`` ("knn" or "linear") on the ``train`` FeatureSet and score ``test``: a JSON-ready
    dict with the method, its settings, the counts and ``top1`` / ``top5`` accuracy in percent."""
    if method not in METHODS:
        raise ProbeInputError(f"unknown probe method {method!r}; use one of {METHODS}")
    train_x, train_y = _labelled(train, "training")
    test_x, test_y = _labelled(test, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ProbeInputError(f"training features have {train_x.shape[1]} dimensions, test features "
                              f"{test_x.shape[1]}: extract both with the same checkpoint")
    num_classes = num_classes or int(max(train_y.max(), test_y.max())) + 1
    if method == "knn":
        scores = knn_scores(train_x, train_y, test_x, num_classes, k, temperature)
        settings = {"k": k, "temperature": temperature}
    else:
        probe = train_linear_probe(train_x, train_y, num_classes, linear)
        with torch.no_grad():
            scores = probe(test_x)
        settings = dataclasses.asdict(linear)
    return {"method": method, **settings, "num_train": len(train_x), "num_test": len(test_x),
            "num_classes": num_classes, **top_k_accuracy(scores, test_y)}
