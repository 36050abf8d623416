"""Checkpoints: PySlowFast names, atomic writes, latest lookup, resume loading."""
import pytest
import torch

from hiera_video.engine.checkpoint import (
    atomic_torch_save, checkpoint_path, find_latest_checkpoint, load_training_checkpoint, save_checkpoint,
)


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
