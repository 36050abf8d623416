"""Resumable testing: SIGTERM during the test stage keeps the finished batches; the same command continues.

Multi-view testing of a large validation set takes hours (K400: 19,877 videos x 15 views; AVA: 57k
keyframes). While the test stage runs, SIGTERM (see :mod:`preemption`) makes every process finish its
batch, write what it has so far (a task-specific payload: per-video score sums for classification, per-box
scores for AVA) to ``OUTPUT_DIR/test/partial_rank{R}.pyth`` (atomically, with a checksum) and exit 0
through :class:`PreemptedInTesting`. The next run skips the batches those files cover and gives the
metrics an uninterrupted run would. Partial files written for another checkpoint (path, size or
modification time), config, split, number of processes or batch are ignored with a warning, as is one that
does not load, or a set of files whose processes finished different numbers of batches; testing then
starts over. The files are removed once every process has its results.

Validation during training is not resumable (a SIGTERM there stops training at the next step).
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from fvcore.common.config import CfgNode

from hiera_video.models.integrity import add_checksum, verify_checksum

from .checkpoint import atomic_torch_save
from .distributed import all_gather_objects
from .logging import get_logger, progress
from .preemption import JobPreempted, PreemptionGuard


class PreemptedInTesting(JobPreempted):
    """Testing stopped on SIGTERM after ``batches`` of ``total`` loader batches; partial files hold them."""

    def __init__(self, batches: int, total: int):
        Exception.__init__(self, f"preempted (SIGTERM) while testing, after {batches} of {total} batches")
        self.epoch, self.iterations = -1, batches


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
    """The partial file of one process, and the SIGTERM guard that decides when to write it.

    A payload is the task's results so far: a dict of tensors, numbers, strings and containers of them
    (what ``torch.load(weights_only=True)`` reads back). ``signature`` lists everything that must be equal
    for a saved payload to be reused (see :func:`testing_signature`).
    """

    def __init__(self, results_dir: str, rank: int, signature: dict[str, Any], guard: PreemptionGuard):
        self.path = Path(results_dir) / f"partial_rank{rank}.pyth"
        self.signature, self.guard = signature, guard

    def restore(self) -> tuple[int, Optional[dict[str, Any]]]:
        """(batches done, payload) of a preempted run of the same test on this process; (0, None) when there
        is no compatible partial file."""
        if not self.path.is_file():
            return 0, None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            verify_checksum(state, self.path)
        except Exception as error:  # an unreadable partial file only costs the batches it held
            get_logger().warning("Ignoring %s (%s: %s); testing starts over.", self.path, type(error).__name__, error)
            return 0, None
        saved = state.get("signature") or {}
        changed = [key for key in self.signature if saved.get(key) != self.signature[key]]
        if changed:
            get_logger().warning("Ignoring %s: it was written for another test (%s changed); testing starts over.",
                                 self.path, ", ".join(changed))
            return 0, None
        get_logger().info("Resuming testing after %d batches from %s", state["batches_done"], self.path)
        return int(state["batches_done"]), state["payload"]

    def should_stop(self) -> bool:
        """Whether any process got SIGTERM (a collective: call it after every batch on every process)."""
        return self.guard.should_stop()

    def save(self, batches_done: int, payload: dict[str, Any]) -> None:
        """Write this process's results after ``batches_done`` batches (atomically, with a checksum)."""
        state = {"signature": self.signature, "batches_done": batches_done, "payload": payload}
        atomic_torch_save(add_checksum(state), self.path)

    def discard(self) -> None:
        """Remove the partial file (the test finished)."""
        self.path.unlink(missing_ok=True)


def resumable_testing(cfg: CfgNode, rank: int, world_size: int, split: str, results_dir: Optional[str],
                      checkpoint: Optional[str], batch_size: int,
                      preemption: Optional[PreemptionGuard]) -> Optional[ResumableTesting]:
    """The partial file of this process for testing ``split`` into ``results_dir`` under ``preemption``;
    None when either is missing (validation during training, or an API call without a guard)."""
    if preemption is None or results_dir is None:
        return None
    signature = testing_signature(cfg, checkpoint, split, world_size, batch_size)
    return ResumableTesting(results_dir, rank, signature, preemption)


def restore_on_every_process(resumable: Optional[ResumableTesting]) -> tuple[int, Optional[dict[str, Any]]]:
    """:meth:`ResumableTesting.restore` when every process finished the same number of batches (their
    per-batch stop checks are collectives); otherwise (0, None) on every process."""
    if resumable is None:
        return 0, None
    batches_done, payload = resumable.restore()
    if len(set(all_gather_objects(batches_done))) > 1:
        get_logger().warning("The partial test files of the processes cover different batches; testing starts over.")
        return 0, None
    return batches_done, payload


def resumable_batches(loader: torch.utils.data.DataLoader, is_main: bool, batches_done: int,
                      resumable: Optional[ResumableTesting], payload_so_far: Callable[[], dict[str, Any]],
                      ) -> Iterator[Any]:
    """The batches of ``loader`` after the first ``batches_done`` (with a progress bar on the main process).

    After the caller has handled each batch but the last, it checks (collectively) for SIGTERM; when asked
    to stop it saves ``payload_so_far()`` and raises :class:`PreemptedInTesting`.
    """
    if batches_done:
        loader.sampler.skip_next_pass(batches_done * loader.batch_size)
    batches = progress(loader, is_main, desc="test", total=len(loader), initial=batches_done)
    for batch_number, batch in enumerate(batches, start=batches_done + 1):
        yield batch
        if resumable is not None and batch_number < len(loader) and resumable.should_stop():
            resumable.save(batch_number, payload_so_far())
            raise PreemptedInTesting(batch_number, len(loader))
