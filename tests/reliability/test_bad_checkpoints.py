"""Bad checkpoints in a whole job: pickles that would run code are refused wherever a checkpoint is read
(TRAIN / TEST.CHECKPOINT_FILE_PATH, auto-resume), and another architecture's weights are refused with the
mismatched keys listed. (Loading alone is tested in tests/models/test_checkpoint.py.)"""
import pathlib

import pytest
import torch

from hiera_video.engine import find_latest_checkpoint
from hiera_video.models.checkpoint import CheckpointError
from tests.reliability.conftest import job_log, run_in_process, run_worker


class CodeOnLoad:
    """Pickles to a call of ``Path.touch(marker)``: loading it without weights_only creates the marker."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def write_evil_checkpoint(path: pathlib.Path, marker: pathlib.Path) -> None:
    """A checkpoint-shaped dict whose model state runs code when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "model_state": CodeOnLoad(marker)}, path)


def test_an_evil_pretrained_checkpoint_is_refused_before_training(tmp_path):
    evil, marker = tmp_path / "pretrained.pyth", tmp_path / "code_ran"
    write_evil_checkpoint(evil, marker)
    result = run_worker(tmp_path / "job", "TRAIN.CHECKPOINT_FILE_PATH", str(evil))
    assert result.returncode != 0
    assert not marker.exists()
    assert f"refusing to load {evil}" in result.stderr or "refusing to load" in result.stderr
    assert find_latest_checkpoint(tmp_path / "job") is None  # no training happened


def test_an_evil_test_checkpoint_is_refused(tmp_path):
    evil, marker = tmp_path / "to_test.pyth", tmp_path / "code_ran"
    write_evil_checkpoint(evil, marker)
    with pytest.raises(CheckpointError, match="refusing to load"):
        run_in_process(tmp_path / "job", "TRAIN.ENABLE", "False", "TEST.ENABLE", "True",
                       "TEST.CHECKPOINT_FILE_PATH", str(evil))
    assert not marker.exists()


def test_an_evil_latest_checkpoint_is_not_run_and_resume_uses_the_previous_one(tmp_path):
    run_in_process(tmp_path, "SOLVER.MAX_EPOCH", "1")
    marker = tmp_path / "code_ran"
    write_evil_checkpoint(tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth", marker)
    run_in_process(tmp_path, "SOLVER.MAX_EPOCH", "2")
    assert not marker.exists()
    log = job_log(tmp_path)
    assert "Cannot resume from" in log and "checkpoint_epoch_00001.pyth (epoch 2" in log
    assert torch.load(find_latest_checkpoint(tmp_path), weights_only=True)["epoch"] == 1


def test_weights_of_another_architecture_are_refused_with_the_mismatched_keys(tmp_path):
    run_in_process(tmp_path / "wider", "SOLVER.MAX_EPOCH", "1", "HIERA.EMBED_DIM", "32")
    checkpoint = find_latest_checkpoint(tmp_path / "wider")
    with pytest.raises(CheckpointError) as error:
        run_in_process(tmp_path / "job", "TRAIN.CHECKPOINT_FILE_PATH", str(checkpoint))
    message = str(error.value)
    assert str(checkpoint) in message and "patch_embed.proj.weight: checkpoint (32, 3, 3, 7, 7)" in message
    assert find_latest_checkpoint(tmp_path / "job") is None
