"""Checkpoints: PySlowFast names, atomic writes, latest lookup, resume loading, permissions, a full disk,
two jobs on one OUTPUT_DIR."""
import errno
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hiera_video.engine.checkpoint import (
    STALE_TEMPORARY_HOURS, CheckpointWriteError, OutputDirInUseError, atomic_torch_save, checkpoint_path,
    find_latest_checkpoint, load_training_checkpoint, save_checkpoint, temporary_path,
)
from hiera_video.models.checkpoint import CheckpointError

REPO = Path(__file__).resolve().parents[2]


def small_setup():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_checkpoint_names_follow_pyslowfast(tmp_path):
    assert checkpoint_path(str(tmp_path), 7).name == "checkpoint_epoch_00007.pyth"
    model, optimizer = small_setup()
    path = save_checkpoint(str(tmp_path), 2, model, optimizer, None, "TASK: mae\n", ["a", "b"])
    assert path == tmp_path / "checkpoints" / "checkpoint_epoch_00003.pyth"
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 2 and state["class_names"] == ["a", "b"] and state["cfg"] == "TASK: mae\n"
    assert set(state) >= {"model_state", "optimizer_state", "scaler_state"}


def test_resume_restores_model_and_optimizer_and_returns_the_next_epoch(tmp_path):
    model, optimizer = small_setup()
    save_checkpoint(str(tmp_path), 4, model, optimizer, None, "", None)
    fresh_model = torch.nn.Linear(3, 2)
    fresh_optimizer = torch.optim.AdamW(fresh_model.parameters(), lr=0.1)
    next_epoch = load_training_checkpoint(find_latest_checkpoint(str(tmp_path)), fresh_model, fresh_optimizer)
    assert next_epoch == 5
    assert torch.equal(fresh_model.weight, model.weight)
    assert torch.equal(fresh_optimizer.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_a_write_killed_midway_leaves_the_previous_latest_intact(tmp_path, monkeypatch):
    model, optimizer = small_setup()
    save_checkpoint(str(tmp_path), 0, model, optimizer, None, "", None)

    def die_midway(obj, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", die_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(str(tmp_path), 1, model, optimizer, None, "", None)
    latest = find_latest_checkpoint(str(tmp_path))
    assert latest.name == "checkpoint_epoch_00001.pyth"
    assert torch.load(latest, weights_only=True)["epoch"] == 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_epoch_00001.pyth"]


def test_latest_ignores_leftover_temporary_files(tmp_path):
    atomic_torch_save({"epoch": 0}, tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth")
    (tmp_path / "checkpoints" / ".checkpoint_epoch_00009.pyth.abc.tmp").write_bytes(b"junk")
    assert find_latest_checkpoint(str(tmp_path)).name == "checkpoint_epoch_00002.pyth"
    assert find_latest_checkpoint(str(tmp_path / "nothing")) is None


def test_weights_only_checkpoints_are_refused_for_resume(tmp_path):
    torch.save({"weight": torch.zeros(2, 3)}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="TRAIN.CHECKPOINT_FILE_PATH"):
        load_training_checkpoint(tmp_path / "plain.pth", torch.nn.Linear(3, 2))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)],
                         ids=["022", "002", "077"])
def test_checkpoints_get_the_permissions_the_umask_gives_any_new_file(tmp_path, umask, mode):
    model, optimizer = small_setup()
    previous = os.umask(umask)
    try:
        path = save_checkpoint(str(tmp_path), 0, model, optimizer, None, "", None)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode  # colleagues on shared storage can read it


@pytest.fixture
def live_pid():
    """The pid of another process that runs during the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


def finished_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_save_removes_only_the_temporary_files_no_job_is_writing(tmp_path, live_pid):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    final = folder / "checkpoint_epoch_00002.pyth"
    hours_ago = time.time() - (STALE_TEMPORARY_HOURS + 1) * 3600
    files = {
        "other live job": temporary_path(final, live_pid),
        "dead job": temporary_path(final, finished_pid()),
        "this process": temporary_path(final),
        "other host, fresh": folder / ".checkpoint_epoch_00002.pyth.elsewhere.123.0a1b2c3d.tmp",
        "other host, old": folder / ".checkpoint_epoch_00002.pyth.elsewhere.124.0a1b2c3d.tmp",
        "older name, fresh": folder / ".checkpoint_epoch_00002.pyth.k2j_x8ab.tmp",
        "older name, old": folder / ".checkpoint_epoch_00002.pyth.q9z_0c1d.tmp",
    }
    for name, path in files.items():
        path.write_bytes(b"half a checkpoint")
        if name.endswith(", old"):
            os.utime(path, (hours_ago, hours_ago))
    model, optimizer = small_setup()
    save_checkpoint(str(tmp_path), 0, model, optimizer, None, "", None)
    kept = sorted(name for name, path in files.items() if path.exists())
    assert kept == ["older name, fresh", "other host, fresh", "other live job"]


def test_a_second_live_job_on_the_same_output_dir_is_refused_until_the_first_one_ends(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from hiera_video.engine.checkpoint import claim_output_dir; "
         "claim_output_dir(sys.argv[1]); print('claimed', flush=True); time.sleep(120)", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        model, optimizer = small_setup()
        with pytest.raises(OutputDirInUseError) as error:
            save_checkpoint(str(tmp_path), 0, model, optimizer, None, "", None)
        message = str(error.value)
        assert f"pid {holder.pid} on " in message and str(tmp_path / "job.lock") in message
        assert isinstance(error.value, CheckpointError) and find_latest_checkpoint(str(tmp_path)) is None
    finally:
        holder.kill()  # SIGKILL: the kernel releases its lock
        holder.wait()
    path = save_checkpoint(str(tmp_path), 0, model, optimizer, None, "", None)
    assert path == checkpoint_path(str(tmp_path), 1)


def torch_style_disk_full(obj, f):
    """torch.save on a full disk: the file write fails with ENOSPC and torch reraises it as its own error."""
    f.write(b"partial bytes")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534") from None


def plain_disk_full(obj, f):
    """A write that fails with ENOSPC itself."""
    f.write(b"partial bytes")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("full_disk_save", [torch_style_disk_full, plain_disk_full], ids=["torch", "oserror"])
def test_a_full_disk_is_named_and_the_previous_checkpoint_stays_intact(tmp_path, monkeypatch, full_disk_save):
    model, optimizer = small_setup()
    save_checkpoint(str(tmp_path), 0, model, optimizer, None, "", None)
    monkeypatch.setattr(torch, "save", full_disk_save)
    with pytest.raises(CheckpointWriteError) as error:
        save_checkpoint(str(tmp_path), 1, model, optimizer, None, "", None)
    message = str(error.value)
    assert f"cannot write {checkpoint_path(str(tmp_path), 2)}: the disk is full" in message
    assert "previous checkpoints are kept" in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_epoch_00001.pyth"]
    assert torch.load(find_latest_checkpoint(str(tmp_path)), weights_only=True)["epoch"] == 0


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 1 MiB tmpfs mounted for the test (skipped where mounting needs privileges this user lacks)."""
    mount_point = tmp_path / "tiny_disk"
    mount_point.mkdir()
    mounted = shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)  # lazily: this process holds its job.lock


def test_a_checkpoint_larger_than_the_free_space_of_a_real_filesystem(tiny_filesystem):
    model, optimizer = small_setup()
    output_dir = str(tiny_filesystem / "job")
    save_checkpoint(output_dir, 0, model, optimizer, None, "", None)
    large = torch.nn.Linear(1000, 1000)  # 4 MB of weights on a 1 MiB disk
    with pytest.raises(CheckpointWriteError, match=f"cannot write {checkpoint_path(output_dir, 2)}: the disk is full"):
        save_checkpoint(output_dir, 1, large, torch.optim.SGD(large.parameters(), lr=0.1), None, "", None)
    names = sorted(p.name for p in (tiny_filesystem / "job" / "checkpoints").iterdir())
    assert names == ["checkpoint_epoch_00001.pyth"]
    assert load_training_checkpoint(find_latest_checkpoint(output_dir), torch.nn.Linear(3, 2)) == 1
    assert shutil.disk_usage(tiny_filesystem).free > 900_000  # the partial file is gone
