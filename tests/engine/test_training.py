"""Training jobs on a tiny Hiera: MAE pretraining, fine-tuning from it, resume, mixed precision."""
import json

import pytest
import torch

from hiera_video.engine import find_latest_checkpoint, run
from hiera_video.engine.logging import read_stats
from hiera_video.engine.tasks import ClassificationTask
from hiera_video.engine.trainer import initialize_model, read_scalars
from hiera_video.engine.distributed import DistributedContext
from tests.engine.fakes import tiny_cfg

CPU = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def final_weights(output_dir):
    """The model state of the last checkpoint in ``output_dir``."""
    return torch.load(find_latest_checkpoint(output_dir), weights_only=True)["model_state"]


@pytest.fixture
def mae_checkpoint(tmp_path_factory, fake_data):
    """Path of the last checkpoint of a 2-epoch MAE pretraining of the tiny model."""
    output_dir = tmp_path_factory.mktemp("mae")
    run(tiny_cfg(output_dir, "TASK", "mae", "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "2"))
    return find_latest_checkpoint(output_dir)


def test_mae_pretraining_writes_periodic_checkpoints_and_stats(mae_checkpoint):
    checkpoints = sorted(p.name for p in mae_checkpoint.parent.iterdir())
    assert checkpoints == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
    state = torch.load(mae_checkpoint, weights_only=True)
    assert state["epoch"] == 1 and "decoder_pred.weight" in state["model_state"]
    assert "MASK_RATIO: 0.9" in state["cfg"] and state["optimizer_state"]["state"]
    records = read_stats(mae_checkpoint.parent.parent)
    epochs = [r for r in records if r["mode"] == "train_epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and all(r["loss"] > 0 for r in epochs)
    assert any(r["mode"] == "train_iter" and "lr" in r for r in records)


def test_fine_tuning_starts_from_the_mae_encoder_with_a_new_head(mae_checkpoint, tmp_path, fake_data):
    cfg = tiny_cfg(tmp_path, "TRAIN.CHECKPOINT_FILE_PATH", str(mae_checkpoint))
    model = initialize_model(cfg, ClassificationTask(cfg), CPU)
    mae_state = torch.load(mae_checkpoint, weights_only=True)["model_state"]
    assert torch.equal(model.state_dict()["blocks.0.attn.qkv.weight"], mae_state["blocks.0.attn.qkv.weight"])
    assert model.head.projection.weight.shape == (4, 128)


def test_fine_tuning_learns_motion_and_testing_reports_metrics(mae_checkpoint, tmp_path, fake_data):
    metrics = run(tiny_cfg(tmp_path, "TRAIN.CHECKPOINT_FILE_PATH", str(mae_checkpoint), "SOLVER.MAX_EPOCH",
                           "12")).test.metrics
    assert metrics["top1"] > 50.0  # 4 classes: chance is 25%
    written = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert written["num_videos"] == 12 and written["num_evaluated"] == 12 and written["num_failed"] == 0
    assert written["top1"] == pytest.approx(metrics["top1"])


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, fake_data, monkeypatch):
    opts = ("TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "3", "MODEL.DROP_PATH_RATE", "0.1")
    run(tiny_cfg(tmp_path / "straight", *opts))

    import hiera_video.engine.tasks as tasks

    original_step = tasks.ClassificationTask.training_step
    calls = {"n": 0}

    def step_then_die(self, *args):
        calls["n"] += 1
        if calls["n"] == 10:  # in the third epoch (4 iterations per epoch), after 2 checkpoints
            raise KeyboardInterrupt("simulated kill")
        return original_step(self, *args)

    monkeypatch.setattr(tasks.ClassificationTask, "training_step", step_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_cfg(tmp_path / "resumed", *opts))
    assert find_latest_checkpoint(tmp_path / "resumed").name == "checkpoint_epoch_00002.pyth"
    monkeypatch.setattr(tasks.ClassificationTask, "training_step", original_step)
    run(tiny_cfg(tmp_path / "resumed", *opts))

    straight, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_gradient_accumulation_matches_one_large_batch(tmp_path, fake_data):
    fake_data["augment"] = False
    opts = ("TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "1")
    run(tiny_cfg(tmp_path / "whole", *opts))
    run(tiny_cfg(tmp_path / "accumulated", *opts, "TRAIN.ACCUM_STEPS", "2"))
    whole, accumulated = final_weights(tmp_path / "whole"), final_weights(tmp_path / "accumulated")
    assert all(torch.allclose(whole[k], accumulated[k], atol=1e-5) for k in whole)


def test_bf16_training_on_cpu_runs_with_clipping_and_activation_checkpointing(tmp_path, fake_data):
    run(tiny_cfg(tmp_path, "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "1", "TRAIN.MIXED_PRECISION", "bf16",
                 "SOLVER.CLIP_GRAD_L2NORM", "1.0", "MODEL.ACT_CHECKPOINT", "True"))
    weights = final_weights(tmp_path)
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_a_diverging_loss_stops_with_advice(tmp_path, fake_data):
    with pytest.raises(FloatingPointError, match="SOLVER.BASE_LR"):
        run(tiny_cfg(tmp_path, "TEST.ENABLE", "False", "SOLVER.BASE_LR", "1e30", "SOLVER.WARMUP_EPOCHS", "0.0"))


def test_too_many_failed_training_videos_stop_the_job(tmp_path, fake_data):
    from hiera_video.datasets import TooManyFailedVideos

    fake_data["failing"] = (0, 4, 8, 12)  # a quarter of the 16 videos
    with pytest.raises(TooManyFailedVideos, match="MAX_FAILED_FRACTION"):
        run(tiny_cfg(tmp_path / "strict", "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "1"))
    run(tiny_cfg(tmp_path / "lenient", "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "1",
                 "TRAIN.MAX_FAILED_FRACTION", "0.5"))
    assert "4 of 16 videos failed to decode" in (tmp_path / "lenient" / "log.txt").read_text()


def test_validation_every_eval_period_is_logged(tmp_path, fake_data):
    run(tiny_cfg(tmp_path, "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "2", "TRAIN.EVAL_PERIOD", "1"))
    validations = [r for r in read_stats(tmp_path) if r["mode"] == "val"]
    assert [r["epoch"] for r in validations] == [1, 2]
    assert all(0.0 <= r["top1"] <= 100.0 and r["num_evaluated"] == 12 for r in validations)
    assert json.loads((tmp_path / "val" / "metrics.json").read_text())["num_videos"] == 12


def test_mixup_training_uses_soft_targets_and_logs_no_training_accuracy(tmp_path, fake_data):
    run(tiny_cfg(tmp_path, "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "1", "MIXUP.ENABLE", "True"))
    epochs = [r for r in read_stats(tmp_path) if r["mode"] == "train_epoch"]
    assert len(epochs) == 1 and epochs[0]["loss"] > 0 and "top1" not in epochs[0]


def test_repeated_augmentation_samples_become_clips_of_the_same_label():
    from hiera_video.datasets.batches import ClipBatch

    clips = torch.arange(2 * 3).float().view(2, 3, 1, 1, 1, 1).expand(2, 3, 3, 2, 4, 4)  # [B, S, C, T, H, W]
    batch = ClipBatch(clips, torch.tensor([7, 9]), torch.tensor([0, 1]), [[], []])
    flat, labels = batch.flat()
    assert batch.num_clips == 6
    assert flat.shape == (6, 3, 2, 4, 4) and labels.tolist() == [7, 7, 7, 9, 9, 9]
    assert flat[4, 0, 0, 0, 0] == 4  # sample 1 of video 1


def test_batch_sizes_that_do_not_split_evenly_are_explained():
    from hiera_video.engine.data import per_process_train_batch

    cfg = tiny_cfg("unused", "TRAIN.BATCH_SIZE", "12", "AUG.NUM_SAMPLE", "2")
    assert per_process_train_batch(cfg, world_size=2) == 3
    with pytest.raises(ValueError, match="TRAIN.BATCH_SIZE 12 must be divisible"):
        per_process_train_batch(cfg, world_size=8)


def test_loss_and_step_statistics_are_read_together_as_floats():
    loss = torch.tensor(1.25, requires_grad=True) * 2
    value, stats = read_scalars(loss, {"top1": torch.tensor(0.5) * 100, "boxes": 3.0})
    assert value == 2.5 and stats == {"top1": 50.0, "boxes": 3.0}
    assert all(type(v) is float for v in (value, *stats.values()))
    assert read_scalars(loss, {}) == (2.5, {})
