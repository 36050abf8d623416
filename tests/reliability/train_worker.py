"""A tiny training job through ``tools/run_net.py`` that can be killed at a chosen point, for the
reliability tests.

Usage: ``python tests/reliability/train_worker.py OUTPUT_DIR [KEY VALUE ...]``. Data is MovingSquares
(:mod:`tests.engine.fakes`, 16 training videos, augmentation from the global generator). Environment:

- ``KILL_AT_STEP=N``: SIGKILL this process when the N-th training step starts (1-based, over the run).
- ``KILL_IN_CHECKPOINT_WRITE=N``: during the N-th checkpoint write, SIGKILL this process once half of
  the bytes are in the temporary file.
- ``SIGTERM_PARENT_AT_STEP=N``: rank 0 sends SIGTERM to its parent (the torchrun agent, which passes it
  on to every worker) in the middle of its N-th training step, and waits until the signal came back to it.
- ``SIGTERM_PARENT_AT_TEST_BATCH=N``: the same while rank 0 scores its N-th test batch.
- ``SIGTERM_GROUP_AT_ITEM=N``: a loader worker sends SIGTERM to the whole process group (main process
  and workers, as schedulers do) while loading its N-th video of the first epoch.
- ``NUM_WORKERS=N``: DataLoader workers (default 0).
"""
import io
import os
import runpy
import signal
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import hiera_video.engine.tasks as tasks  # noqa: E402
from hiera_video.engine import data as engine_data  # noqa: E402
from hiera_video.engine import view_scorer  # noqa: E402
from tests.engine.fakes import TINY_OPTS, MovingSquares  # noqa: E402


def env_int(name: str) -> int:
    """An integer environment variable (0 when unset)."""
    return int(os.environ.get(name, "0"))


def wait_for_forwarded_sigterm(timeout: float = 60) -> None:
    """Block until torchrun has passed the SIGTERM on to this process (its PreemptionGuard saw it).

    Under load the agent can take longer than the rest of an epoch to forward the signal; waiting keeps
    the stop at the step the test chose.
    """
    guard = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    deadline = time.monotonic() + timeout
    while not getattr(guard, "requested", True) and time.monotonic() < deadline:
        time.sleep(0.01)


def install_step_hooks(kill_at: int, parent_sigterm_at: int) -> None:
    """Wrap the classification step to SIGKILL this process or SIGTERM its parent at chosen steps."""
    original_step = tasks.ClassificationTask.training_step
    calls = {"n": 0}

    def hooked_step(self, *args):
        calls["n"] += 1
        if calls["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        step = original_step(self, *args)
        if calls["n"] == parent_sigterm_at and os.environ.get("RANK", "0") == "0":
            os.kill(os.getppid(), signal.SIGTERM)
            wait_for_forwarded_sigterm()
        return step

    tasks.ClassificationTask.training_step = hooked_step


def install_test_batch_hook(parent_sigterm_at: int) -> None:
    """Make rank 0 SIGTERM its parent (torchrun) while it scores its N-th test batch."""
    original_add = view_scorer.ViewScorer.add
    calls = {"n": 0}

    def hooked_add(self, *args):
        calls["n"] += 1
        if calls["n"] == parent_sigterm_at and os.environ.get("RANK", "0") == "0":
            os.kill(os.getppid(), signal.SIGTERM)
            wait_for_forwarded_sigterm()
        return original_add(self, *args)

    view_scorer.ViewScorer.add = hooked_add


def install_checkpoint_write_hook(kill_in_write: int) -> None:
    """Make the N-th checkpoint write die by SIGKILL half-way through its bytes."""
    original_save = torch.save
    calls = {"n": 0}

    def half_written_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] != kill_in_write:
            return original_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        original_save(obj, buffer)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = half_written_save  # in this job only checkpoint writes call torch.save


class GroupSignallingSquares(MovingSquares):
    """MovingSquares whose loader worker signals the whole process group at its ``signal_at``-th item."""

    def __init__(self, size: int, split: str, signal_at: int):
        super().__init__(size, split)
        self.signal_at, self.items_loaded = signal_at, 0

    def __getitem__(self, index: int) -> dict:
        self.items_loaded += 1
        if self.items_loaded == self.signal_at and torch.utils.data.get_worker_info() is not None:
            os.killpg(os.getpgid(0), signal.SIGTERM)
        return super().__getitem__(index)


def main() -> None:
    """Route the engine to MovingSquares, install the requested hooks and run tools/run_net.py."""
    output_dir, *opts = sys.argv[1:]
    group_signal_at = env_int("SIGTERM_GROUP_AT_ITEM")
    engine_data._build_dataset = lambda cfg, split: (
        GroupSignallingSquares(16, split, group_signal_at) if group_signal_at else MovingSquares(16, split))
    install_step_hooks(env_int("KILL_AT_STEP"), env_int("SIGTERM_PARENT_AT_STEP"))
    install_test_batch_hook(env_int("SIGTERM_PARENT_AT_TEST_BATCH"))
    if env_int("KILL_IN_CHECKPOINT_WRITE"):
        install_checkpoint_write_hook(env_int("KILL_IN_CHECKPOINT_WRITE"))
    # Every torchrun rank runs this: each writes its own file, so none can read another's half-written one.
    config = Path(output_dir).with_suffix(f".rank{os.environ.get('RANK', '0')}.yaml")
    config.write_text("TEST:\n  ENABLE: False\n", encoding="utf-8")
    sys.argv = ["run_net.py", "--cfg", str(config), *TINY_OPTS, "OUTPUT_DIR", output_dir,
                "DATA_LOADER.NUM_WORKERS", str(env_int("NUM_WORKERS")), *opts]
    runpy.run_path(str(REPO / "tools" / "run_net.py"), run_name="__main__")


if __name__ == "__main__":
    main()
