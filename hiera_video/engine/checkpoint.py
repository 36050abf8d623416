"""Training checkpoints in PySlowFast's layout, written atomically.

``OUTPUT_DIR/checkpoints/checkpoint_epoch_{:05d}.pyth`` (the number is the count of finished epochs)
holds ``epoch`` (0-based index of the last finished epoch, as PySlowFast), ``model_state``,
``optimizer_state``, ``scaler_state``, ``cfg`` (the YAML text), ``class_names`` and ``checksum`` (a CRC32
of the content: see :mod:`hiera_video.models.integrity`). A file is written to a temporary name in the
same folder (named after the host and process writing it), flushed to disk and renamed over its final
name, so a job killed mid-write (or out of disk space) leaves the previous checkpoints intact and never a
truncated "latest" one. Checkpoints are read by :func:`hiera_video.models.checkpoint.read_checkpoint_contents`,
which checks the checksum.

One job writes an OUTPUT_DIR's checkpoints at a time: the first save takes ``OUTPUT_DIR/job.lock``
(:func:`claim_output_dir`) and a second live job is refused; each save removes only temporary files
that no job is still writing (:func:`remove_stale_temporary_files`).
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Optional

import torch

from hiera_video.models.checkpoint import CheckpointContents, CheckpointError, read_checkpoint_contents
from hiera_video.models.integrity import add_checksum

from .logging import get_logger

CHECKPOINT_PATTERN = re.compile(r"^checkpoint_epoch_(\d{5})\.pyth$")
TEMPORARY_NAME = re.compile(r"^\.checkpoint_epoch_\d{5}\.pyth\.(?P<host>[\w-]+)\.(?P<pid>\d+)\.[0-9a-f]+\.tmp$",
                            re.ASCII)
# Another host's temporary file untouched this long belongs to a job that died (a write takes minutes).
STALE_TEMPORARY_HOURS = 6
_ALMOST_FULL_BYTES = 1 << 20  # torch's bare write error with less free space than this: the disk is full
LOCK_NAME = "job.lock"
_held_locks: dict[str, int] = {}  # resolved OUTPUT_DIR -> open descriptor of its locked job.lock


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (the disk is full); the previous checkpoints are intact."""


class OutputDirInUseError(CheckpointError):
    """Another running job writes its checkpoints to the same OUTPUT_DIR."""


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


def claim_output_dir(output_dir: str | os.PathLike) -> None:
    """Make this process the one job writing checkpoints to ``output_dir`` (rank 0 of a torchrun job).

    It takes a lock on ``OUTPUT_DIR/job.lock`` (writing its pid and host there) and holds it while the
    process lives; the kernel releases it when the process ends, even when killed, so a restarted job
    takes it over. Raises OutputDirInUseError, naming the other job, while another process holds it. On a
    filesystem without locks (some network mounts) it only warns.
    """
    key = str(Path(output_dir).resolve())
    if key in _held_locks:
        return
    path = Path(output_dir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(handle)
        if error.errno not in (errno.EACCES, errno.EAGAIN):
            get_logger().warning("Cannot lock %s (%s): nothing keeps a second job from writing checkpoints to "
                                 "%s at the same time.", path, error, output_dir)
            return
        raise OutputDirInUseError(
            f"OUTPUT_DIR {output_dir} is in use by another running job ({_lock_holder(path)}; it holds {path}): "
            "two jobs writing one OUTPUT_DIR overwrite each other's checkpoints. Give this job another "
            "OUTPUT_DIR, or wait for the other one to end.") from None
    os.ftruncate(handle, 0)
    os.write(handle, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
             .encode())
    _held_locks[key] = handle


def _lock_holder(path: Path) -> str:
    """What a held job.lock says about its job ("pid 123 on host since ...")."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or "its pid is not written yet"
    except OSError as error:
        return f"cannot read who: {error}"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file next to ``path``, fsync it, then rename it over ``path``.

    The file gets the permissions of any new file (0666 less the umask), not mkstemp's 0600. A full disk
    raises CheckpointWriteError naming ``path``; the partial temporary file is removed and ``path``, if it
    existed, is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path, handle = _create_temporary_file(path)
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_path, path)
    except BaseException as error:
        disk_full = isinstance(error, Exception) and _is_disk_full(error, path.parent)
        temp_path.unlink(missing_ok=True)
        if disk_full:
            raise CheckpointWriteError(
                f"cannot write {path}: the disk is full (no space left on the filesystem of {path.parent}). "
                "The previous checkpoints are kept; free some space (or give another OUTPUT_DIR) and run the "
                "same command again to resume.") from error
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def temporary_path(path: str | os.PathLike, pid: Optional[int] = None) -> Path:
    """Where process ``pid`` of this host (default: this process) writes ``path`` before renaming it:
    ``.<name>.<host>.<pid>.<random hex>.tmp`` beside it (see :func:`remove_stale_temporary_files`)."""
    path = Path(path)
    return path.parent / f".{path.name}.{_host_name()}.{os.getpid() if pid is None else pid}.{secrets.token_hex(4)}.tmp"


def _create_temporary_file(path: Path) -> tuple[Path, int]:
    """A new, empty :func:`temporary_path` for ``path`` and its open descriptor; created with mode 0666 less
    the umask."""
    while True:
        temp_path = temporary_path(path)
        try:
            return temp_path, os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _is_disk_full(error: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space: ENOSPC / EDQUOT anywhere in the exception chain, or torch's
    bare ``RuntimeError: [enforce fail at inline_container.cc]`` on a filesystem with (almost) no space left."""
    cause: Optional[BaseException] = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        cause = cause.__cause__ or cause.__context__
    return isinstance(error, RuntimeError) and shutil.disk_usage(folder).free < _ALMOST_FULL_BYTES


def _host_name() -> str:
    """This machine's name as it appears in temporary file names (letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "localhost"


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def remove_stale_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary checkpoint files of ``folder`` that no job is writing any more; return them.

    A temporary file is named ``.<checkpoint>.<host>.<pid>.<random>.tmp``. It is stale when its process is
    this one (no write is in progress between saves) or is gone from this host, or, for another host's (or
    an older name without host and pid), when it was not modified for STALE_TEMPORARY_HOURS: another job
    writing to the same OUTPUT_DIR keeps its file.
    """
    removed = []
    for temp_path in Path(folder).glob(".checkpoint_epoch_*.pyth.*.tmp"):
        if _is_stale_temporary_file(temp_path):
            temp_path.unlink(missing_ok=True)  # each can be gigabytes
            removed.append(temp_path)
    return removed


def _is_stale_temporary_file(temp_path: Path) -> bool:
    """See :func:`remove_stale_temporary_files`."""
    owner = TEMPORARY_NAME.match(temp_path.name)
    if owner is not None and owner["host"] == _host_name():
        pid = int(owner["pid"])
        return pid == os.getpid() or not _process_alive(pid)
    try:
        age_s = time.time() - temp_path.stat().st_mtime
    except FileNotFoundError:  # its job just renamed it into place
        return False
    return age_s > STALE_TEMPORARY_HOURS * 3600


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
    claim_output_dir(output_dir)
    remove_stale_temporary_files(path.parent)
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
