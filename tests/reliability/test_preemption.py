"""Preemption: SIGTERM makes a training job finish its iteration, write a checkpoint and exit 0; the
job resumes mid-epoch to the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

import hiera_video.engine.tasks as tasks
from hiera_video.engine import launch
from hiera_video.engine.preemption import JobPreempted, PreemptedBeforeStage, PreemptionGuard
from hiera_video.models.integrity import add_checksum
from tests.reliability.conftest import (
    REPO, WORKER, assert_same_weights, checkpoint_names, final_weights, job_log, run_in_process, run_worker,
)


def sigterm_at_step(monkeypatch, step: int, task_class: type = tasks.ClassificationTask) -> None:
    """Make this process receive SIGTERM in the middle of the ``step``-th training step (1-based)."""
    original_step = task_class.training_step
    calls = {"n": 0}

    def step_with_signal(self, *args):
        calls["n"] += 1
        result = original_step(self, *args)
        if calls["n"] == step:
            os.kill(os.getpid(), signal.SIGTERM)  # handled before backward and the optimizer step
        return result

    monkeypatch.setattr(task_class, "training_step", step_with_signal)


def test_sigterm_mid_epoch_writes_a_resumable_checkpoint_and_stops(uninterrupted, tmp_path, monkeypatch):
    sigterm_at_step(monkeypatch, 6)  # epoch 2, iteration 2 of 4
    with pytest.raises(JobPreempted, match=r"preempted \(SIGTERM\) in epoch 2 after 2 iteration\(s\)"):
        run_in_process(tmp_path)
    assert "Received SIGTERM" in job_log(tmp_path)
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
    state = torch.load(tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth", weights_only=True)
    assert state["epoch"] == 0  # the last finished epoch, as PySlowFast counts
    assert state["resume_state"]["epoch"] == 1 and state["resume_state"]["iteration"] == 2

    monkeypatch.undo()
    run_in_process(tmp_path)
    assert "(epoch 2, iteration 3)" in job_log(tmp_path)
    assert_same_weights(final_weights(tmp_path), uninterrupted)


def test_sigterm_in_the_last_iteration_of_an_epoch_keeps_that_epoch(uninterrupted, tmp_path, monkeypatch):
    sigterm_at_step(monkeypatch, 4)
    with pytest.raises(JobPreempted):
        run_in_process(tmp_path)
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth"]
    assert "resume_state" not in torch.load(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth",
                                            weights_only=True)
    monkeypatch.undo()
    run_in_process(tmp_path)
    assert_same_weights(final_weights(tmp_path), uninterrupted)


def test_mae_with_gradient_accumulation_stops_at_an_optimizer_step_and_resumes_exactly(tmp_path, monkeypatch):
    opts = ("TASK", "mae", "TRAIN.ACCUM_STEPS", "2")  # 8 micro-batches of 2 clips per epoch
    run_in_process(tmp_path / "straight", *opts)
    sigterm_at_step(monkeypatch, 11, tasks.MaskedAutoencoderTask)  # epoch 2, micro-batch 3: mid-accumulation
    with pytest.raises(JobPreempted, match="in epoch 2 after 4 iteration"):
        run_in_process(tmp_path / "resumed", *opts)
    monkeypatch.undo()
    run_in_process(tmp_path / "resumed", *opts)
    assert_same_weights(final_weights(tmp_path / "resumed"), final_weights(tmp_path / "straight"))


def test_with_loader_workers_a_mid_epoch_resume_still_gives_the_uninterrupted_weights(uninterrupted, tmp_path,
                                                                                      monkeypatch):
    # Items are seeded by (seed, epoch, video), so neither the 2 workers nor the restart change a clip:
    # the result equals the uninterrupted run made without workers.
    sigterm_at_step(monkeypatch, 6)
    with pytest.raises(JobPreempted):
        run_in_process(tmp_path, "DATA_LOADER.NUM_WORKERS", "2")
    monkeypatch.undo()
    run_in_process(tmp_path, "DATA_LOADER.NUM_WORKERS", "2")
    assert "(epoch 2, iteration 3)" in job_log(tmp_path)
    assert_same_weights(final_weights(tmp_path), uninterrupted)


def test_a_mid_epoch_checkpoint_of_another_world_size_restarts_its_epoch(tmp_path, monkeypatch):
    sigterm_at_step(monkeypatch, 6)
    with pytest.raises(JobPreempted):
        run_in_process(tmp_path)
    monkeypatch.undo()
    path = tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth"
    state = torch.load(path, weights_only=True)
    state["resume_state"]["world_size"] = 2  # as if written by 2 processes
    torch.save(add_checksum(state), path)
    run_in_process(tmp_path)
    assert "epoch 2 restarts from its first iteration" in job_log(tmp_path)
    assert checkpoint_names(tmp_path)[-1] == "checkpoint_epoch_00003.pyth"


def test_sigterm_leaves_no_handler_behind(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    run_in_process(tmp_path, "SOLVER.MAX_EPOCH", "1")
    assert signal.getsignal(signal.SIGTERM) is before


def test_nested_guards_lose_no_sigterm_between_them():
    with PreemptionGuard() as outer:
        os.kill(os.getpid(), signal.SIGTERM)
        with PreemptionGuard() as inner:
            assert inner.requested  # received before the inner guard was entered
    with PreemptionGuard() as outer:
        with PreemptionGuard():
            os.kill(os.getpid(), signal.SIGTERM)
        assert outer.requested  # received while the inner guard was active


def test_sigterm_before_testing_stops_the_job_before_any_batch(tmp_path, monkeypatch):
    run_in_process(tmp_path, "SOLVER.MAX_EPOCH", "1")  # the checkpoint to test
    setup_logging = launch.setup_logging

    def setup_logging_then_sigterm(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        return setup_logging(*args)

    monkeypatch.setattr(launch, "setup_logging", setup_logging_then_sigterm)
    with PreemptionGuard():  # this process survives the signal even if run() did not handle it
        with pytest.raises(PreemptedBeforeStage, match=r"preempted \(SIGTERM\) before testing began"):
            run_in_process(tmp_path, "TRAIN.ENABLE", "False", "TEST.ENABLE", "True")
    assert not (tmp_path / "test").exists()


def test_sigterm_to_the_process_group_spares_the_loader_workers_and_run_net_exits_0(tmp_path):
    stopped = run_worker(tmp_path, SIGTERM_GROUP_AT_ITEM=2, NUM_WORKERS=1)  # first batch, first epoch
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Job preempted (SIGTERM) in epoch 1" in stopped.stderr and "run the same command" in stopped.stderr
    assert "killed by signal" not in stopped.stderr and "Received SIGTERM" in stopped.stderr
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth"]
    state = torch.load(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth", weights_only=True)
    assert state["resume_state"]["epoch"] == 0 and state["resume_state"]["iteration"] >= 1


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
    rank_lines = "\n".join(line for line in resumed.stderr.splitlines() if line.startswith("[rank1]"))
    assert resumed.returncode == 0, f"rank 1 said:\n{rank_lines[-3000:]}\n\nthe tail:\n{resumed.stderr[-3000:]}"
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]


def test_sigterm_to_torchrun_while_testing_keeps_every_rank_s_batches_and_the_rerun_completes_them(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def torchrun(*opts: str, **hooks: int) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   str(WORKER), str(tmp_path), "SOLVER.MAX_EPOCH", "1", "TEST.BATCH_SIZE", "4", *opts]
        return subprocess.run(command, env={**env, **{k: str(v) for k, v in hooks.items()}}, capture_output=True,
                              text=True, timeout=120, start_new_session=True)

    straight = torchrun("TEST.ENABLE", "True")  # train, then test uninterrupted: 4 batches per rank
    assert straight.returncode == 0, straight.stderr[-3000:]
    uninterrupted = json.loads((tmp_path / "test" / "metrics.json").read_text())
    (tmp_path / "test" / "metrics.json").unlink()

    stopped = torchrun("TRAIN.ENABLE", "False", "TEST.ENABLE", "True", SIGTERM_PARENT_AT_TEST_BATCH=2)
    assert stopped.stderr.count("Job preempted (SIGTERM) while testing, after 2 of 4 batches") == 2, \
        stopped.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "test").glob("partial_rank*")) == ["partial_rank0.pyth",
                                                                                 "partial_rank1.pyth"]
    resumed = torchrun("TRAIN.ENABLE", "False", "TEST.ENABLE", "True")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming testing after 2 batches" in job_log(tmp_path)
    assert json.loads((tmp_path / "test" / "metrics.json").read_text()) == uninterrupted
    assert not list((tmp_path / "test").glob("partial_rank*"))
