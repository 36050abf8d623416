"""The batch types the datasets' collate functions make and the engine's tasks read.

A dataset item is a dict (see :mod:`clip_dataset` and :mod:`ava`); a loader batch is one of these
dataclasses, so every field a task or evaluator reads is written down here once:

- :class:`ClipBatch`: training clips of Kinetics / SSv2 (``TASK`` classification and mae).
- :class:`ViewBatch`: multi-view test videos of Kinetics / SSv2 (classification testing).
- :class:`AvaBatch`: AVA keyframe clips with their boxes, for training and testing (``TASK ava``).

Videos that fail to decode never disappear: in training a dataset replaces them and lists them in
``replaced`` (one list of ``(video, reason)`` pairs per item); in testing they are not substituted and go
to ``failed``. ``pin_memory()`` lets a DataLoader with ``pin_memory=True`` pin the tensors.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch


class _PinnableBatch:
    """``pin_memory()`` for a dataclass: a copy with every tensor field pinned."""

    def pin_memory(self):
        """A copy of the batch whose tensors are in pinned memory (what DataLoader's pin thread calls)."""
        pinned = {f.name: getattr(self, f.name).pin_memory() for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), torch.Tensor)}
        return dataclasses.replace(self, **pinned)


class _ReplacingBatch(_PinnableBatch):
    """A training batch whose items list the videos they replaced."""

    replaced: list[list[tuple[str, str]]]

    def replaced_videos(self) -> list[tuple[str, str]]:
        """The ``(video, reason)`` pairs of every item, in one list."""
        return [pair for pairs in self.replaced for pair in pairs]


@dataclass
class ClipBatch(_ReplacingBatch):
    """Training clips: ``clips`` [B, C, T, H, W] (or [B, S, C, T, H, W] with AUG.NUM_SAMPLE > 1 repeated
    augmentation samples), ``labels`` and dataset ``index`` [B], ``replaced`` per item."""

    clips: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    replaced: list[list[tuple[str, str]]] = field(default_factory=list)

    @property
    def num_clips(self) -> int:
        """Clips the batch feeds the model (videos x repeated-augmentation samples)."""
        return self.clips.shape[0] * (self.clips.shape[1] if self.clips.ndim == 6 else 1)

    def flat(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(clips [B*S, C, T, H, W], labels [B*S]): repeated-augmentation samples as separate clips."""
        if self.clips.ndim == 6:
            return self.clips.flatten(0, 1), self.labels.repeat_interleave(self.clips.shape[1])
        return self.clips, self.labels


@dataclass
class ViewBatch(_PinnableBatch):
    """Test videos that decoded: ``views`` [B, V, C, T, H, W] (V = TEST.NUM_ENSEMBLE_VIEWS x
    TEST.NUM_SPATIAL_CROPS, temporal-major; an empty [0] tensor when none decoded), ``labels`` and ``index``
    [B]; ``failed`` lists ``{"index", "path", "error", "label"}`` of the batch's videos that did not."""

    views: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    failed: list[dict] = field(default_factory=list)

    def select(self, keep: torch.Tensor) -> "ViewBatch":
        """The decoded videos where the bool mask ``keep`` [B] is True (``failed`` is kept whole)."""
        return ViewBatch(self.views[keep], self.labels[keep], self.index[keep], self.failed)


@dataclass
class AvaBatch(_ReplacingBatch):
    """AVA keyframe clips ``clips`` [B, C, T, H, W] with all their boxes: ``boxes`` [K, 5] (batch index,
    x1, y1, x2, y2 in pixels of the clip), multi-hot ``labels`` [K, 80], per box ``original_boxes`` [K, 4]
    (normalized, as in the box file), ``video_ids`` and ``timestamps``; keyframe dataset ``index`` [B].
    ``failed`` lists ``{"video_id", "timestamp", "error", "index"}`` of test keyframes that could not be
    decoded, ``replaced`` per decoded item the ``(video_id, reason)`` pairs of the keyframes it replaced."""

    clips: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    original_boxes: torch.Tensor
    video_ids: list[str]
    timestamps: list[int]
    index: torch.Tensor
    failed: list[dict] = field(default_factory=list)
    replaced: list[list[tuple[str, str]]] = field(default_factory=list)
