"""Resumable testing: SIGTERM during the test stage keeps the scores so far; the same command continues.

Multi-view testing of a large validation set takes hours (K400: 19,877 videos x 15 views). While the test
stage runs, SIGTERM (see :mod:`preemption`) makes every process finish its batch, write its per-video
score sums, labels and failures to ``OUTPUT_DIR/test/partial_rank{R}.pyth`` (atomically, with a checksum)
and exit 0 through :class:`PreemptedInTesting`. The next run skips the batches those files cover and gives
the metrics an uninterrupted run would. A partial file written for another checkpoint (path, size or
modification time), config, split, number of processes or batch is ignored with a warning, as is one
that does not load; testing then starts over. The files are removed once the metrics are written.

Validation during training is not resumable (a SIGTERM there stops training at the next step).
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from fvcore.common.config import CfgNode

from .checkpoint import atomic_torch_save
from .integrity import add_checksum, verify_checksum
from .logging import get_logger
from .preemption import JobPreempted, PreemptionGuard


class PreemptedInTesting(JobPreempted):
    """Testing stopped on SIGTERM after ``batches`` of ``total`` loader batches; partial files hold them."""

    def __init__(self, batches: int, total: int):
        Exception.__init__(self, f"preempted (SIGTERM) while testing, after {batches} of {total} batches")
        self.epoch, self.iterations = -1, batches


@dataclass
class PartialScores:
    """One process's finished share of a test run."""

    batches_done: int = 0
    scores: dict[int, tuple[torch.Tensor, int]] = field(default_factory=dict)  # video -> (summed softmax [K], label)
    failures: dict[int, dict[str, Any]] = field(default_factory=dict)  # video -> {"index", "path", "error", ...}


def testing_signature(cfg: CfgNode, checkpoint: Optional[str], split: str, world_size: int,
                   batch_size: int) -> dict[str, Any]:
    """What must not change for saved batches to be reused: the weights (checkpoint path, size, modification
    time), the whole config, the split, the number of processes and the per-process batch."""
    stamp = [None]  # random initialization (TEST.ALLOW_RANDOM_INIT), seeded by RNG_SEED
    if checkpoint is not None:
        stat = os.stat(checkpoint)
        stamp = [os.path.abspath(checkpoint), stat.st_size, stat.st_mtime_ns]
    return {"checkpoint": stamp, "config": zlib.crc32(cfg.dump().encode("utf-8")), "split": split,
            "world_size": world_size, "batch_size": batch_size}


class ResumableTesting:
    """The partial-scores file of one process, and the SIGTERM guard that decides when to write it.

    ``signature`` lists everything that must be equal for saved batches to be reused (see the module
    docstring); :meth:`restore` returns them, or an empty :class:`PartialScores`.
    """

    def __init__(self, results_dir: str, rank: int, signature: dict[str, Any], guard: PreemptionGuard):
        self.path = Path(results_dir) / f"partial_rank{rank}.pyth"
        self.signature, self.guard = signature, guard

    def restore(self) -> PartialScores:
        """The batches a preempted run of the same test finished on this process (none when there is no
        compatible partial file)."""
        if not self.path.is_file():
            return PartialScores()
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            verify_checksum(state, self.path)
        except Exception as error:  # an unreadable partial file only costs the batches it held
            get_logger().warning("Ignoring %s (%s: %s); testing starts over.", self.path, type(error).__name__, error)
            return PartialScores()
        saved = state.get("signature") or {}
        changed = [key for key in self.signature if saved.get(key) != self.signature[key]]
        if changed:
            get_logger().warning("Ignoring %s: it was written for another test (%s changed); testing starts over.",
                                 self.path, ", ".join(changed))
            return PartialScores()
        scores = {int(i): (row, int(label)) for i, row, label in zip(state["index"], state["scores"], state["label"])}
        get_logger().info("Resuming testing after %d batches (%d videos scored) from %s", state["batches_done"],
                          len(scores), self.path)
        return PartialScores(int(state["batches_done"]), scores, dict(state["failures"]))

    def should_stop(self) -> bool:
        """Whether any process got SIGTERM (a collective: call it after every batch on every process)."""
        return self.guard.should_stop()

    def save(self, partial: PartialScores) -> None:
        """Write this process's finished batches (atomically, with a checksum)."""
        indices = sorted(partial.scores)
        rows = [partial.scores[i][0] for i in indices]
        state = {
            "signature": self.signature,
            "batches_done": partial.batches_done,
            "index": torch.tensor(indices, dtype=torch.long),
            "scores": torch.stack(rows) if rows else torch.zeros(0, 0),
            "label": torch.tensor([partial.scores[i][1] for i in indices], dtype=torch.long),
            "failures": partial.failures,
        }
        atomic_torch_save(add_checksum(state), self.path)

    def discard(self) -> None:
        """Remove the partial file (the test finished)."""
        self.path.unlink(missing_ok=True)
