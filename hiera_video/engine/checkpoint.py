"""Training checkpoints in PySlowFast's layout, written atomically.

``OUTPUT_DIR/checkpoints/checkpoint_epoch_{:05d}.pyth`` (the number is the count of finished epochs)
holds ``epoch`` (0-based index of the last finished epoch, as PySlowFast), ``model_state``,
``optimizer_state``, ``scaler_state``, ``cfg`` (the YAML text), ``class_names`` and ``checksum`` (a CRC32
of the content: see :mod:`hiera_video.models.integrity`). A file is written to a temporary name in the
same folder, flushed to disk and renamed over its final name, so a job killed mid-write leaves the previous
checkpoints intact and never a truncated "latest" one. Checkpoints are read by
:func:`hiera_video.models.checkpoint.read_checkpoint_contents`, which checks the checksum.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch

from hiera_video.models.checkpoint import CheckpointContents, read_checkpoint_contents
from hiera_video.models.integrity import add_checksum

from .logging import get_logger

CHECKPOINT_PATTERN = re.compile(r"^checkpoint_epoch_(\d{5})\.pyth$")


def checkpoint_dir(output_dir: str) -> Path:
    """The folder holding a job's checkpoints."""
    return Path(output_dir) / "checkpoints"


def checkpoint_path(output_dir: str, finished_epochs: int) -> Path:
    """Path of the checkpoint written after ``finished_epochs`` epochs."""
    return checkpoint_dir(output_dir) / f"checkpoint_epoch_{finished_epochs:05d}.pyth"


def find_latest_checkpoint(output_dir: str) -> Optional[Path]:
    """The checkpoint with the most finished epochs in ``output_dir``, or None (temporary files ignored)."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return None
    numbered = [(int(m.group(1)), folder / name) for name in os.listdir(folder) if (m := CHECKPOINT_PATTERN.match(name))]
    return max(numbered)[1] if numbered else None


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file next to ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.remove(temp_name)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def save_checkpoint(
    output_dir: str,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Optional[torch.amp.GradScaler],
    cfg_yaml: str,
    class_names: Optional[list[str]] = None,
    resume_state: Optional[dict] = None,
) -> Path:
    """Write the checkpoint after 0-based ``epoch`` finished; return its path.

    A preempted job passes ``resume_state`` (see :mod:`hiera_video.engine.preemption`) with ``epoch`` =
    the epoch in progress: the file is named after that epoch but records ``epoch - 1`` as finished.
    """
    state = {
        "epoch": epoch if resume_state is None else epoch - 1,
        "model_state": unwrap_model(model).state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "scaler_state": scaler.state_dict() if scaler is not None else None,
        "cfg": cfg_yaml,
        "class_names": list(class_names) if class_names else None,
    }
    if resume_state is not None:
        state["resume_state"] = resume_state
    path = checkpoint_path(output_dir, epoch + 1)
    for leftover in checkpoint_dir(output_dir).glob(".checkpoint_epoch_*.pyth.*.tmp"):
        leftover.unlink(missing_ok=True)  # left by a job killed mid-write; each can be gigabytes
    atomic_torch_save(add_checksum(state), path)
    return path


def load_training_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
) -> int:
    """Restore model, optimizer and scaler from a toolkit checkpoint; return the next epoch to run."""
    return _restore_training_state(read_checkpoint_contents(path), path, model, optimizer, scaler)


def _restore_training_state(contents: CheckpointContents, path: str | os.PathLike, model: torch.nn.Module,
                            optimizer: Optional[torch.optim.Optimizer],
                            scaler: Optional[torch.amp.GradScaler]) -> int:
    """Load a checkpoint's weights and state into model, optimizer and scaler; return the next epoch to run."""
    state = contents.metadata
    if "epoch" not in state:
        raise ValueError(
            f"{path} is not a hiera-video training checkpoint (no 'epoch' beside its weights); to initialize "
            "from weights only, give it as TRAIN.CHECKPOINT_FILE_PATH instead."
        )
    unwrap_model(model).load_state_dict(contents.state_dict)
    if optimizer is not None and state.get("optimizer_state") is not None:
        optimizer.load_state_dict(state["optimizer_state"])
    if scaler is not None and state.get("scaler_state") is not None:
        scaler.load_state_dict(state["scaler_state"])
    return int(state["epoch"]) + 1


def resume_from_latest_good_checkpoint(
    output_dir: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Optional[torch.amp.GradScaler] = None,
) -> tuple[Path, int, Optional[dict]]:
    """Restore the newest checkpoint of ``output_dir`` that loads; return (path, next epoch, resume state).

    A checkpoint that fails to load (truncated by a full disk, corrupted, written by another model) is
    reported with its error and the previous one is tried; a ``ValueError`` lists them all when none loads.
    """
    folder = checkpoint_dir(output_dir)
    candidates = sorted(
        (folder / name for name in os.listdir(folder) if CHECKPOINT_PATTERN.match(name)), reverse=True
    ) if folder.is_dir() else []
    problems = []
    for path in candidates:
        try:
            contents = read_checkpoint_contents(path)
            next_epoch = _restore_training_state(contents, path, model, optimizer, scaler)
        except Exception as error:  # any unreadable file: report it and fall back to the previous one
            problems.append(f"{path}: {type(error).__name__}: {error}")
            get_logger().error("Cannot resume from %s (%s: %s); trying the previous checkpoint.",
                               path, type(error).__name__, str(error).splitlines()[0] if str(error) else "")
            continue
        return path, next_epoch, contents.metadata.get("resume_state")
    raise ValueError(
        f"No checkpoint in {folder} can be loaded to resume:\n" + "\n".join(problems)
        + "\nMove the broken files away to start over, or set TRAIN.AUTO_RESUME False."
    )
