"""Content checksums of saved states, so that a bit flipped on disk is caught when the file is read.

``torch.load`` does not verify the CRC32 sums of its zip records: a flipped bit inside a tensor loads
silently and training (or testing, or predict) would go on from corrupted weights. The engine's
``save_checkpoint`` (and its partial test results) therefore store ``checksum``, a CRC32 over the bytes of
every tensor and the ``repr`` of every other value and key of the state (in its order);
:func:`hiera_video.models.checkpoint.read_checkpoint_contents` recomputes it and treats a mismatch like a
file that does not load.
"""
from __future__ import annotations

import os
import zlib
from typing import Any, Iterator

import torch

CHECKSUM_KEY = "checksum"


def _leaves(value: Any) -> Iterator[Any]:
    """Keys and values of nested dicts / lists / tuples, depth first, in order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def state_checksum(state: Any) -> int:
    """CRC32 of a checkpoint's content: tensor bytes (any device and dtype) and other values' ``repr``."""
    crc = 0
    for leaf in _leaves(state):
        if isinstance(leaf, torch.Tensor):
            data = leaf.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # [numel * element size]
            crc = zlib.crc32(data.numpy(), crc)
        else:
            crc = zlib.crc32(repr(leaf).encode("utf-8"), crc)
    return crc


def add_checksum(state: dict) -> dict:
    """``state`` with its ``checksum`` entry set (computed over everything else)."""
    return {**state, CHECKSUM_KEY: state_checksum({k: v for k, v in state.items() if k != CHECKSUM_KEY})}


def verify_checksum(state: dict, path: str | os.PathLike) -> None:
    """Raise ValueError when ``state`` (loaded from ``path``) no longer matches its stored checksum.
    Checkpoints without one (older or foreign files) pass."""
    if not isinstance(state, dict) or CHECKSUM_KEY not in state:
        return
    actual = state_checksum({k: v for k, v in state.items() if k != CHECKSUM_KEY})
    if actual != state[CHECKSUM_KEY]:
        raise ValueError(
            f"{path} is corrupted: its content checksum is {actual:#010x}, the stored one {state[CHECKSUM_KEY]:#010x} "
            "(a disk or copy error changed its bytes)."
        )
