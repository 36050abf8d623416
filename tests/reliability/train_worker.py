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
- ``SIGTERM_GROUP_AT_DECODE=N``: just before the N-th frame request of the main process (or of loader
  worker 0) to its decode helper (DATA.DECODE_TIMEOUT > 0), SIGTERM goes to the whole process group from
  outside it, as a scheduler sends it; once every process of the group has taken it, the request goes on.
- ``SIGTERM_GROUP_AT_TEST_BATCH=N``: the same while the main process scores its N-th test batch.
- ``SIGTERM_GROUP_AT_START_UP=1``: the same while ``run`` sets up logging (before training or testing).
- ``SIGTERM_GROUP_IN_MODEL_BUILD=1``: the same while the task builds its model.
- ``REAL_VIDEOS=1``: train on the dataset the options name (e.g. a Kinetics folder) instead of MovingSquares.
- ``NUM_WORKERS=N``: DataLoader workers (default 0).
"""
import io
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import hiera_video.engine.tasks as tasks  # noqa: E402
from hiera_video.datasets import decoding  # noqa: E402
from hiera_video.engine import data as engine_data  # noqa: E402
from hiera_video.engine import launch, view_scorer  # noqa: E402
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


def proc_status(pid: int) -> dict[str, str]:
    """The fields of /proc/PID/status ({} for a process that is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {key: value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}


def has_sigterm_in(status: dict[str, str], *masks: str) -> bool:
    """Whether SIGTERM is set in any of the named signal masks (SigPnd, ShdPnd, SigIgn) of a status."""
    return any(int(status.get(mask, "0"), 16) & (1 << (signal.SIGTERM - 1)) for mask in masks)


def processes(**field_values: int) -> list[int]:
    """Processes whose /proc/PID/stat fields (``ppid``, ``pgrp``) have the given values."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (command)": state ppid pgrp ...
        except (OSError, IndexError):
            continue
        values = {"ppid": int(fields[1]), "pgrp": int(fields[2])}
        if all(values[key] == value for key, value in field_values.items()):
            found.append(int(stat.parent.name))
    return found


def wait_until(condition, timeout: float = 60) -> None:
    """Poll ``condition()`` until it holds (or ``timeout`` seconds passed: the test's assertions then tell)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def sigterm_process_group_and_wait() -> None:
    """Send SIGTERM to this process group from another process (as SLURM or Kubernetes would) and wait until
    every member took it: died of it, ignored it or ran its handler.

    In a loader worker, first wait until every worker ignores SIGTERM: torch kills a worker that gets it
    before its ``worker_init_fn`` ran, a start-up window this harness does not aim at."""
    if torch.utils.data.get_worker_info() is not None:
        wait_until(lambda: all(has_sigterm_in(proc_status(pid), "SigIgn") for pid in processes(ppid=os.getppid())))
    group = os.getpgid(0)
    subprocess.run([sys.executable, "-c", f"import os; os.killpg({group}, {int(signal.SIGTERM)})"],
                   start_new_session=True, check=True)

    def pending(pid: int) -> bool:
        status = proc_status(pid)
        return not status.get("State", "Z").startswith("Z") and has_sigterm_in(status, "SigPnd", "ShdPnd")

    wait_until(lambda: not any(pending(pid) for pid in processes(pgrp=group)))
    print(f"hook: SIGTERM sent to process group {group}", file=sys.stderr, flush=True)


def install_decode_request_hook(signal_at: int) -> None:
    """Make the main process (or loader worker 0) signal the group before its N-th frame request to the
    decode helper."""
    original_request = decoding.DecodeServer.request
    calls = {"n": 0}

    def hooked_request(self, message, *args):
        worker = torch.utils.data.get_worker_info()
        if message[0] == "frames" and (worker is None or worker.id == 0):
            calls["n"] += 1
            if calls["n"] == signal_at:
                sigterm_process_group_and_wait()
        return original_request(self, message, *args)

    decoding.DecodeServer.request = hooked_request


def signal_group_during(owner: object, name: str, at_call: int = 1) -> None:
    """Make the ``at_call``-th call of ``owner.name`` (a function or method) signal the process group before
    it does its work."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def signalling(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_call:
            sigterm_process_group_and_wait()
        return original(*args, **kwargs)

    setattr(owner, name, signalling)


def main() -> None:
    """Route the engine to MovingSquares, install the requested hooks and run tools/run_net.py."""
    output_dir, *opts = sys.argv[1:]
    group_signal_at = env_int("SIGTERM_GROUP_AT_ITEM")
    if not env_int("REAL_VIDEOS"):
        engine_data._build_dataset = lambda cfg, split: (
            GroupSignallingSquares(16, split, group_signal_at) if group_signal_at else MovingSquares(16, split))
    if env_int("SIGTERM_GROUP_AT_DECODE"):
        install_decode_request_hook(env_int("SIGTERM_GROUP_AT_DECODE"))
    if env_int("SIGTERM_GROUP_AT_TEST_BATCH"):
        signal_group_during(view_scorer.ViewScorer, "add", env_int("SIGTERM_GROUP_AT_TEST_BATCH"))
    if env_int("SIGTERM_GROUP_AT_START_UP"):
        signal_group_during(launch, "setup_logging")
    if env_int("SIGTERM_GROUP_IN_MODEL_BUILD"):
        signal_group_during(tasks.ClassificationTask, "build_model")
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
