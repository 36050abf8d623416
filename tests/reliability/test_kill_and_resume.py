"""Kill and resume: a job SIGKILLed mid-iteration or mid-checkpoint-write, or whose newest checkpoint is
truncated, resumes with TRAIN.AUTO_RESUME and ends with the weights of an uninterrupted run."""
import os
import signal

import pytest
import torch

from hiera_video.engine import find_latest_checkpoint
from tests.reliability.conftest import (
    assert_same_weights, checkpoint_names, final_weights, job_log, run_in_process, run_worker,
)


def test_sigkill_during_an_iteration_then_auto_resume_gives_the_same_weights(uninterrupted, tmp_path):
    killed = run_worker(tmp_path, KILL_AT_STEP=7)  # epoch 2, iteration 3
    assert killed.returncode == -signal.SIGKILL
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth"]
    run_in_process(tmp_path)
    assert "Resuming from" in job_log(tmp_path) and "checkpoint_epoch_00001.pyth (epoch 2" in job_log(tmp_path)
    assert_same_weights(final_weights(tmp_path), uninterrupted)


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one_as_latest(uninterrupted, tmp_path):
    killed = run_worker(tmp_path, KILL_IN_CHECKPOINT_WRITE=2)  # half of checkpoint_epoch_00002 written
    assert killed.returncode == -signal.SIGKILL
    files = checkpoint_names(tmp_path)
    assert "checkpoint_epoch_00002.pyth" not in files and any(name.endswith(".tmp") for name in files)
    assert find_latest_checkpoint(tmp_path).name == "checkpoint_epoch_00001.pyth"
    run_in_process(tmp_path)
    assert_same_weights(final_weights(tmp_path), uninterrupted)
    assert not any(name.endswith(".tmp") for name in checkpoint_names(tmp_path))  # the next save cleaned up


def test_a_truncated_latest_checkpoint_is_reported_and_the_previous_one_is_used(uninterrupted, tmp_path):
    killed = run_worker(tmp_path, KILL_AT_STEP=11)  # epoch 3, after checkpoints 1 and 2
    assert killed.returncode == -signal.SIGKILL
    latest = tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 3])  # e.g. a full disk or a bad copy
    run_in_process(tmp_path)
    log = job_log(tmp_path)
    assert "Cannot resume from" in log and "checkpoint_epoch_00002.pyth" in log
    assert "Resuming from" in log and "checkpoint_epoch_00001.pyth (epoch 2" in log
    assert_same_weights(final_weights(tmp_path), uninterrupted)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the random bytes
def test_resume_refuses_when_no_checkpoint_loads_and_says_what_to_do(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "checkpoint_epoch_00001.pyth").write_bytes(b"\x00" * 100)
    (folder / "checkpoint_epoch_00002.pyth").write_bytes(os.urandom(1000))
    with pytest.raises(ValueError) as error:
        run_in_process(tmp_path)
    assert "No checkpoint in" in str(error.value) and "TRAIN.AUTO_RESUME False" in str(error.value)
    assert "checkpoint_epoch_00001.pyth" in str(error.value) and "checkpoint_epoch_00002.pyth" in str(error.value)


def test_a_bit_flipped_inside_the_weights_of_the_latest_checkpoint_is_caught(uninterrupted, tmp_path):
    killed = run_worker(tmp_path, KILL_AT_STEP=11)  # epoch 3, after checkpoints 1 and 2
    assert killed.returncode == -signal.SIGKILL
    latest = tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth"
    weights = torch.load(latest, weights_only=True)["model_state"]["blocks.0.attn.qkv.weight"]
    data = bytearray(latest.read_bytes())
    offset = data.find(weights.numpy().tobytes())
    assert offset > 0
    data[offset + 5] ^= 0x10  # torch.load itself would not notice: zip CRCs are not checked
    latest.write_bytes(bytes(data))
    run_in_process(tmp_path)
    log = job_log(tmp_path)
    assert "Cannot resume from" in log and "checkpoint_epoch_00002.pyth is corrupted" in log
    assert "checkpoint_epoch_00001.pyth (epoch 2" in log
    assert_same_weights(final_weights(tmp_path), uninterrupted)
