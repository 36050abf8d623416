"""Process groups: one process on CPU or GPU, or torchrun's data-parallel processes (gloo / nccl).

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; a single process
without torchrun runs with world size 1 and no process group. Multi-node runs use torchrun's own flags
(see the README): nothing here needs to know how many machines there are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hiera_video.utils.errors import EnvironmentMismatchError


@dataclass(frozen=True)
class DistributedContext:
    """Where this process runs: its rank among ``world_size`` processes and its torch device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that logs, writes files and prints (rank 0)."""
        return self.rank == 0


def setup_distributed(num_gpus: int, backend: str = "") -> DistributedContext:
    """Join torchrun's process group when launched by it, and choose this process's device.

    ``num_gpus`` 0 runs on CPU (gloo); otherwise one GPU per process, ``cuda:LOCAL_RANK`` (nccl).
    ``backend`` "" picks nccl on GPU and gloo on CPU.
    """
    if num_gpus > 0 and not torch.cuda.is_available():
        raise EnvironmentMismatchError(f"NUM_GPUS {num_gpus} was asked for, but CUDA is not available; use NUM_GPUS 0 "
                                       "for CPU.")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if num_gpus > 0:
        if local_rank >= torch.cuda.device_count():
            raise EnvironmentMismatchError(
                f"LOCAL_RANK {local_rank} has no GPU (this machine has {torch.cuda.device_count()}); "
                "start at most one process per GPU with torchrun --nproc_per_node."
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend or ("nccl" if num_gpus > 0 else "gloo"))
        global _control_group
        _control_group = dist.new_group(backend="gloo")  # every rank, right after joining: same order
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


_control_group: Any = None  # the gloo group of setup_distributed, for CPU control messages


def control_group() -> Any:
    """A gloo group for small control messages (stop flags) as CPU tensors, so that checking them never
    waits for the GPU; None (the default group) when the process group was not joined by
    :func:`setup_distributed`."""
    return _control_group


def cleanup_distributed() -> None:
    """Leave the process group, if one was joined."""
    global _control_group
    _control_group = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(obj: Any) -> list[Any]:
    """Gather one picklable object from every process (a one-element list without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over processes (the tensor itself without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()
