"""Preemption: SIGTERM stops training after the current iteration with a resumable mid-epoch checkpoint.

Clusters announce preemption with SIGTERM (SLURM, Kubernetes, spot instances) and kill the job a grace
period later. While :class:`PreemptionGuard` is active, SIGTERM only sets a flag; the trainer checks it
after every optimizer step (never between accumulated micro-batches), writes a checkpoint and raises
:class:`JobPreempted`, which ``tools/run_net.py`` turns into a message and exit code 0.

The mid-epoch checkpoint is the regular ``checkpoint_epoch_{N:05d}.pyth`` of the epoch in progress (N =
its 1-based number, so it is the latest one) with ``epoch`` = the last *finished* epoch and a
``resume_state`` holding the epoch, the finished iterations and every random generator's state. Resuming
skips the finished batches without loading them and restores the generators; training items are seeded by
(RNG_SEED, epoch, video) (see :mod:`data`), so with or without loader workers the resumed run is bitwise the
uninterrupted one (on CPU). The epoch's logged mean loss covers only the iterations after the restart.
A mid-epoch checkpoint written by another number of processes or per-process batch restarts its epoch.

SIGTERM at the end of an epoch keeps that epoch (a regular checkpoint) and stops before validation.

Guards nest: :func:`~hiera_video.engine.launch.run` holds one from its start, so SIGTERM during start-up
(joining the process group, building the model and loaders) is never fatal. One that comes before
training or testing begins stops the job there (:class:`PreemptedBeforeStage`: nothing written but the
config and the log). An inner guard (training's, testing's) takes over a SIGTERM its outer guard received
before it was entered, so one that comes while they build their model or loader stops them at their first
stop check (after the first optimizer step, or the first test batch); on exit it hands its own back.

Under torchrun, the agent passes SIGTERM on to every worker; the workers agree through an all-reduce, all
stop after the same step, rank 0 writes the generators of every rank, and each exits 0 (torchrun itself
then reports the signal it got). DataLoader workers ignore SIGTERM, so a signal sent to the whole process
group does not kill them mid-batch; decode helpers that such a signal ends are replaced without failing
their video (see :mod:`hiera_video.datasets.decoding`). Testing (TEST.ENABLE) keeps its finished batches
the same way (see :mod:`testing_resume`).
"""
from __future__ import annotations

import random
import signal
import threading
from typing import Any, Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from .distributed import control_group
from .logging import get_logger


class JobPreempted(Exception):
    """Training stopped on SIGTERM after ``iterations`` iterations of 0-based ``epoch``; a checkpoint holds it."""

    def __init__(self, epoch: int, iterations: int):
        super().__init__(f"preempted (SIGTERM) in epoch {epoch + 1} after {iterations} iteration(s)")
        self.epoch, self.iterations = epoch, iterations


class PreemptedBeforeStage(JobPreempted):
    """The job stopped on SIGTERM before ``stage`` ("training", "testing") began; nothing of it is lost."""

    def __init__(self, stage: str):
        Exception.__init__(self, f"preempted (SIGTERM) before {stage} began")
        self.epoch, self.iterations = -1, 0


class PreemptionGuard:
    """Context manager: while active, SIGTERM sets ``requested`` instead of killing the process.

    Outside the main thread (where Python cannot install signal handlers) it does nothing. The previous
    handler is restored on exit. Entered inside another guard, it starts with that guard's request and
    passes its own on to it on exit, so that no SIGTERM is lost between them.
    """

    def __init__(self, signum: int = signal.SIGTERM,
                 action: str = "stopping after the current iteration to write a checkpoint"):
        self.signum, self.action = signum, action
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> "PreemptionGuard":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self.signum, self._on_signal)
            self._installed = True
            outer = _guard_of(self._previous)
            self.requested = self.requested or (outer is not None and outer.requested)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._installed:
            signal.signal(self.signum, self._previous)
            self._installed = False
            outer = _guard_of(self._previous)
            if outer is not None:
                outer.requested = outer.requested or self.requested

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True
        get_logger().warning("Received %s: %s.", signal.Signals(signum).name, self.action)

    def should_stop(self) -> bool:
        """Whether any process was asked to stop (all processes agree, so their collectives stay in step).
        Under :func:`~hiera_video.engine.distributed.setup_distributed` the flag travels on a gloo group: no wait for the GPU."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0])
        group = control_group()  # gloo: a CPU flag, no wait for the GPU
        if group is None and dist.get_backend() == "nccl":
            flag = flag.cuda()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=group)
        return bool(flag.item() > 0)


def _guard_of(handler: Any) -> Optional[PreemptionGuard]:
    """The guard whose signal handler ``handler`` is, if any."""
    owner = getattr(handler, "__self__", None)
    return owner if isinstance(owner, PreemptionGuard) else None


def stop_if_preempted(preemption: PreemptionGuard, stage: str) -> None:
    """Raise :class:`PreemptedBeforeStage` when any process got SIGTERM (a collective: every process calls
    it before ``stage`` begins)."""
    if preemption.should_stop():
        raise PreemptedBeforeStage(stage)


def ignore_sigterm_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a SIGTERM sent to the whole process group must not kill the loader's
    workers mid-batch; the main process decides when to stop (and its exit ends the workers)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def capture_rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's (CPU and CUDA) global generators, checkpoint-friendly."""
    numpy_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`capture_rng_state`."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumableDistributedSampler(DistributedSampler):
    """A DistributedSampler whose next pass can skip its first indices (the batches a preempted run did).

    ``len()`` stays the full shard length, so the iteration count of an epoch (and the lr schedule that
    depends on it) does not change when resuming.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._skip_next = 0

    def skip_next_pass(self, num_indices: int) -> None:
        """Leave out the first ``num_indices`` indices of the next pass only."""
        self._skip_next = num_indices

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self._skip_next = self._skip_next, 0
        return iter(indices[skip:])


def compatible_resume_state(resume_state: Optional[dict], world_size: int, batch_size: int) -> Optional[dict]:
    """``resume_state`` when it was written by as many processes with the same per-process batch; else None
    (with a warning): the sampler shards differ, so the interrupted epoch restarts from its beginning."""
    if resume_state is None:
        return None
    written = (resume_state.get("world_size"), resume_state.get("batch_size"))
    if written == (world_size, batch_size):
        return resume_state
    get_logger().warning(
        "The mid-epoch checkpoint was written by %s process(es) with batches of %s, this run has %d with %d: "
        "epoch %d restarts from its first iteration.", written[0], written[1], world_size, batch_size,
        resume_state["epoch"] + 1)
    return None


def resume_position(resume_state: Optional[dict], epoch: int) -> int:
    """Iterations of 0-based ``epoch`` already done according to a checkpoint's ``resume_state`` (0 if none)."""
    if resume_state is None or resume_state["epoch"] != epoch:
        return 0
    return int(resume_state["iteration"])
