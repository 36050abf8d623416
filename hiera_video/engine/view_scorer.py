"""Multi-view scoring: the summed softmax of every test view per video, computed in full passes."""
from __future__ import annotations

from typing import Optional

import torch

from .precision import autocast_context


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
