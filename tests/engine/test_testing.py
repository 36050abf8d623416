"""Multi-view testing: summed softmax per video, metrics.json, failed videos, checkpoint choice, refused
partial checkpoints."""
import json

import numpy as np
import pytest
import torch

from hiera_video.engine import get_task, run, save_checkpoint
from hiera_video.engine.meters import classification_metrics, topk_accuracy
from hiera_video.models.checkpoint import IncompleteCheckpointError
from hiera_video.models.integrity import add_checksum
from tests.engine.fakes import tiny_cfg


@pytest.fixture
def trained_dir(tmp_path_factory, fake_data):
    """OUTPUT_DIR of a 2-epoch classification training (no test)."""
    output_dir = tmp_path_factory.mktemp("trained")
    run(tiny_cfg(output_dir, "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "2"))
    return output_dir


def test_3x5_views_are_summed_per_video_and_failures_are_listed(trained_dir, fake_data):
    fake_data["failing"] = (4, 9)
    metrics = run(tiny_cfg(trained_dir, "TRAIN.ENABLE", "False", "TEST.NUM_ENSEMBLE_VIEWS", "5",
                           "TEST.NUM_SPATIAL_CROPS", "3")).test.metrics
    predictions = np.load(trained_dir / "test" / "predictions.npz")
    assert predictions["scores"].shape == (10, 4)
    np.testing.assert_allclose(predictions["scores"].sum(axis=1), 15.0, rtol=1e-5)  # 15 softmax rows each
    assert sorted(predictions["index"]) == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]
    assert predictions["path"][0] == "video_0.mp4"
    expected = classification_metrics(torch.from_numpy(predictions["scores"]), torch.from_numpy(predictions["label"]))
    written = json.loads((trained_dir / "test" / "metrics.json").read_text())
    assert written["top1"] == pytest.approx(expected["top1"]) == pytest.approx(metrics["top1"])
    assert written["num_videos"] == 12 and written["num_evaluated"] == 10 and written["num_failed"] == 2
    assert [f["path"] for f in written["failed"]] == ["video_4.mp4", "video_9.mp4"]
    assert written["top1_failed_as_wrong"] == pytest.approx(written["top1"] * 10 / 12)
    assert written["checkpoint"].endswith("checkpoint_epoch_00002.pyth")


def test_testing_without_a_checkpoint_refuses_unless_asked(tmp_path, fake_data):
    with pytest.raises(FileNotFoundError, match="TEST.ALLOW_RANDOM_INIT"):
        run(tiny_cfg(tmp_path, "TRAIN.ENABLE", "False"))
    metrics = run(tiny_cfg(tmp_path, "TRAIN.ENABLE", "False", "TEST.ALLOW_RANDOM_INIT", "True")).test.metrics
    assert metrics["num_evaluated"] == 12 and metrics["checkpoint"] is None


def test_an_explicit_test_checkpoint_wins_over_the_latest(trained_dir, tmp_path, fake_data):
    first = trained_dir / "checkpoints" / "checkpoint_epoch_00001.pyth"
    metrics = run(tiny_cfg(tmp_path, "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", str(first))).test.metrics
    assert metrics["checkpoint"] == str(first)


def test_metrics_count_top5_and_mean_class_accuracy():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 1, 1, 1])
    metrics = classification_metrics(scores, labels)
    assert metrics["top1"] == pytest.approx(50.0)
    assert topk_accuracy(scores, labels, 2) == pytest.approx(100.0)
    assert metrics["top5"] == pytest.approx(100.0)  # k is capped at the number of classes
    assert metrics["mean_class_acc"] == pytest.approx((100.0 + 100.0 / 3) / 2)  # class 0: 1/1, class 1: 1/3


@pytest.fixture
def saved_model(tmp_path):
    """A toolkit checkpoint of the tiny model (untrained: what matters here is which weights it holds)."""
    cfg = tiny_cfg(tmp_path / "saved")
    model = get_task(cfg).build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return save_checkpoint(cfg.OUTPUT_DIR, 0, model, optimizer, None, cfg.dump(), None)


def test_a_checkpoint_lacking_weights_is_refused_unless_random_init_is_allowed(saved_model, tmp_path, fake_data):
    state = torch.load(saved_model, weights_only=True)
    state["model_state"] = {k: v for k, v in state["model_state"].items() if not k.startswith("blocks.0.")}
    partial = str(tmp_path / "partial.pyth")
    torch.save(add_checksum({k: v for k, v in state.items() if k != "checksum"}), partial)  # intact, incomplete
    with pytest.raises(IncompleteCheckpointError, match=f"{partial} does not hold every weight") as error:
        run(tiny_cfg(tmp_path / "refused", "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", partial))
    assert "blocks.0.norm1.weight" in str(error.value) and "TEST.ALLOW_RANDOM_INIT" in str(error.value)
    assert not (tmp_path / "refused" / "test" / "metrics.json").exists()
    metrics = run(tiny_cfg(tmp_path / "on_purpose", "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", partial,
                           "TEST.ALLOW_RANDOM_INIT", "True")).test.metrics
    assert metrics["num_evaluated"] == 12 and metrics["checkpoint"] == partial


def test_a_checkpoint_with_a_head_of_another_size_is_refused(saved_model, tmp_path, fake_data):
    with pytest.raises(IncompleteCheckpointError, match=r"head\.projection\.weight: checkpoint \(4, 128\) vs model "
                       r"\(5, 128\)"):
        run(tiny_cfg(tmp_path, "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", str(saved_model),
                     "MODEL.NUM_CLASSES", "5"))
    assert not (tmp_path / "test" / "metrics.json").exists()
