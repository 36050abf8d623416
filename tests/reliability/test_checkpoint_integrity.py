"""Checkpoint checksums cover every tensor (any dtype, 0-d included) and every other value."""
import pytest
import torch

from hiera_video.models.integrity import add_checksum, verify_checksum


def signed_state() -> dict:
    """A small checkpoint-shaped state with its checksum."""
    state = {"epoch": 3, "cfg": "TASK: mae\n",
             "model_state": {"w": torch.randn(4, 3), "b16": torch.ones(2, dtype=torch.bfloat16)},
             "optimizer_state": {"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.zeros(3)}}},
             "resume_state": {"rng": [torch.arange(5, dtype=torch.uint8)], "python": (3, (1, 2), None)}}
    return add_checksum(state)


def test_an_untouched_state_verifies_after_a_save_and_load(tmp_path):
    torch.save(signed_state(), tmp_path / "c.pyth")
    verify_checksum(torch.load(tmp_path / "c.pyth", weights_only=True), tmp_path / "c.pyth")


@pytest.mark.parametrize("corrupt", [
    lambda s: s["model_state"]["w"].view(-1)[5].add_(1e-6),
    lambda s: s["model_state"]["b16"].fill_(2),
    lambda s: s["optimizer_state"]["state"][0]["step"].fill_(8),
    lambda s: s.update(epoch=4),
    lambda s: s["resume_state"]["rng"][0].fill_(0),
    lambda s: s["model_state"].update(w2=s["model_state"].pop("w")),
], ids=["weight", "bf16", "0-d step", "epoch", "rng", "key"])
def test_any_change_is_reported_with_the_path(corrupt):
    state = signed_state()
    corrupt(state)
    with pytest.raises(ValueError, match="c.pyth is corrupted"):
        verify_checksum(state, "c.pyth")


def test_checkpoints_without_a_checksum_pass():
    verify_checksum({"model_state": {"w": torch.zeros(1)}}, "old.pyth")
