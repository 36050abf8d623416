"""Preemption: SIGTERM makes a training job finish its iteration, write a checkpoint and exit 0; the
job resumes mid-epoch to the weights of an uninterrupted run."""

import os
import subprocess
import sys

import torch

from tests.reliability.conftest import REPO, WORKER, assert_same_weights, checkpoint_names, final_weights, run_worker


def test_sigterm_mid_epoch_writes_a_resumable_checkpoint_and_exits_cleanly(uninterrupted, tmp_path):
    stopped = run_worker(tmp_path, SIGTERM_AT_STEP=6)  # epoch 2, iteration 2 of 4
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Received SIGTERM" in stopped.stderr
    assert "preempted (SIGTERM) in epoch 2 after 2 iteration(s)" in stopped.stderr
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
    state = torch.load(tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth", weights_only=True)
    assert state["epoch"] == 0  # the last finished epoch, as PySlowFast counts
    assert state["resume_state"]["epoch"] == 1 and state["resume_state"]["iteration"] == 2

    resumed = run_worker(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "(epoch 2, iteration 3)" in resumed.stderr
    assert_same_weights(final_weights(tmp_path), uninterrupted)


def test_sigterm_in_the_last_iteration_of_an_epoch_keeps_that_epoch(uninterrupted, tmp_path):
    stopped = run_worker(tmp_path, SIGTERM_AT_STEP=4)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth"]
    assert "resume_state" not in torch.load(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth",
                                            weights_only=True)
    resumed = run_worker(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_weights(final_weights(tmp_path), uninterrupted)


def test_sigterm_to_the_process_group_spares_the_loader_workers(tmp_path):
    stopped = run_worker(tmp_path, SIGTERM_GROUP_AT_ITEM=2, NUM_WORKERS=1)  # first batch, first epoch
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "killed by signal" not in stopped.stderr and "Received SIGTERM" in stopped.stderr
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth"]
    resumed = run_worker(tmp_path, NUM_WORKERS=1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checkpoint_names(tmp_path)[-1] == "checkpoint_epoch_00003.pyth"


def test_sigterm_to_torchrun_checkpoints_every_rank_and_the_job_resumes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(WORKER), str(tmp_path), "SOLVER.MAX_EPOCH", "2"]
    stopped = subprocess.run(command, env={**env, "SIGTERM_PARENT_AT_STEP": "2"}, capture_output=True, text=True,
                             timeout=120, start_new_session=True)
    # torchrun itself reports the signal it got; its workers checkpoint and exit cleanly.
    assert stopped.stderr.count("Job preempted (SIGTERM) in epoch 1") == 2, stopped.stderr[-3000:]
    state = torch.load(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth", weights_only=True)
    assert state["resume_state"]["epoch"] == 0 and len(state["resume_state"]["rng"]) == 2
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, start_new_session=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
