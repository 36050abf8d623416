"""The task contract: steps report what the trainer counts, the registry is the one list of tasks, and
the test stage reuses a last validation that scored the same split with the same checkpoint."""
import json

import numpy as np
import pytest
import torch

from hiera_video.config import ConfigError
from hiera_video.datasets.ava import collate_ava_batch
from hiera_video.engine import run
from hiera_video.engine.tasks import StepOutput, Task, get_task, register_task, task_names
from hiera_video.engine.tasks import base as task_base
from hiera_video.engine.view_scorer import ViewScorer
from tests.engine.fakes import tiny_cfg


def ava_item(index: int, boxes: int, replaced: list) -> dict:
    """A decoded AVA training item with ``boxes`` boxes that replaced the keyframes of ``replaced``."""
    return {"clip": torch.zeros(3, 2, 8, 8), "boxes": torch.rand(boxes, 4), "labels": torch.zeros(boxes, 80),
            "original_boxes": torch.rand(boxes, 4), "video_id": f"v{index}", "timestamp": 902 + index,
            "index": index, "replaced": replaced}


def test_ava_steps_report_the_keyframes_their_items_replaced(tmp_path):
    first, second = ("vidB", "cannot open (keyframe 0902)"), ("vidB", "cannot open (keyframe 0903)")
    third = ("vidC", "no video stream (keyframe 0904)")
    batch = collate_ava_batch([ava_item(0, 2, [first]), ava_item(1, 1, []), ava_item(2, 1, [second, third])])
    assert batch.replaced == [[first], [], [second, third]]
    cfg = tiny_cfg(tmp_path, "TASK", "ava", "MODEL.NUM_CLASSES", "80", "MODEL.LOSS_FUNC", "bce",
                   "DATA.NUM_FRAMES", "2", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
                   "DATA.TRAIN_JITTER_SCALES", "[32, 40]")
    task = get_task(cfg)
    model = task.build_model()
    batch.clips = torch.zeros(3, 3, 2, 32, 32)
    step = task.training_step(model, batch, torch.device("cpu"))
    assert isinstance(step, StepOutput) and step.num_clips == 3 and step.stats["boxes"] == 4.0
    assert step.replaced == [first, second, third]
    assert torch.isfinite(step.loss)


def test_ava_needs_the_binary_cross_entropy_loss(tmp_path):
    with pytest.raises(ConfigError, match="MODEL.LOSS_FUNC 'soft_cross_entropy' does not fit TASK ava"):
        tiny_cfg(tmp_path, "TASK", "ava", "MODEL.NUM_CLASSES", "80")


@pytest.mark.parametrize("task", ["ava", "mae"])
def test_only_classification_testing_compiles(tmp_path, task):
    with pytest.raises(ConfigError, match=f"TEST.COMPILE: TASK {task} does not support it"):
        tiny_cfg(tmp_path, "TASK", task, "MODEL.LOSS_FUNC", "bce", "TEST.COMPILE", "True")
    assert tiny_cfg(tmp_path, "TEST.COMPILE", "True").TEST.COMPILE is True


def test_a_mask_ratio_that_hides_every_mask_unit_is_a_config_error(tmp_path):
    # 8 x 64 x 64 clips: 4 x 16 x 16 tokens, 4 x 2 x 2 = 16 mask units of 1 x 8 x 8.
    assert tiny_cfg(tmp_path, "TASK", "mae", "MAE.MASK_RATIO", "0.9").MAE.MASK_RATIO == 0.9  # keeps 1
    with pytest.raises(ConfigError, match="MAE.MASK_RATIO 0.95 hides all 16 mask units of a 8x64x64 input"):
        tiny_cfg(tmp_path, "TASK", "mae", "MAE.MASK_RATIO", "0.95")


def test_a_registered_task_is_a_valid_task_value(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"TASK must be one of \['ava', 'classification', 'mae'\]"):
        tiny_cfg(tmp_path, "TASK", "probe")
    monkeypatch.setattr(task_base, "_TASKS", dict(task_base._TASKS))

    @register_task("probe")
    class ProbeTask(Task):
        def build_model(self):
            return torch.nn.Identity()

        def training_step(self, model, batch, device):
            return StepOutput(torch.zeros(()), 0)

    assert "probe" in task_names() and tiny_cfg(tmp_path, "TASK", "probe").TASK == "probe"
    assert isinstance(get_task(tiny_cfg(tmp_path, "TASK", "probe")), ProbeTask)
    with pytest.raises(TypeError, match="TASK 'probe' has no test stage"):
        ProbeTask(tiny_cfg(tmp_path)).evaluate(None, None, "val", None)


def count_scored_views(monkeypatch) -> list[int]:
    """Patch ViewScorer.add to record how many videos each call adds."""
    added = []
    original = ViewScorer.add

    def add(self, views, indices):
        added.append(len(indices))
        return original(self, views, indices)

    monkeypatch.setattr(ViewScorer, "add", add)
    return added


def test_a_last_validation_of_the_test_split_is_the_test_result(tmp_path, fake_data, monkeypatch):
    added = count_scored_views(monkeypatch)
    result = run(tiny_cfg(tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.EVAL_PERIOD", "2", "TEST.SPLIT", "val"))
    assert sum(added) == 12  # one pass over the 12 videos: validation only
    val = json.loads((tmp_path / "val" / "metrics.json").read_text())
    test = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert val == test and test["checkpoint"].endswith("checkpoint_epoch_00002.pyth")
    np.testing.assert_array_equal(np.load(tmp_path / "val" / "predictions.npz")["scores"],
                                  np.load(tmp_path / "test" / "predictions.npz")["scores"])
    assert result.test.results_dir == str(tmp_path / "test") and result.test.summary["num_videos"] == 12
    assert result.summary()["stage"] == "test" and result.summary()["top1"] == test["top1"]


@pytest.mark.parametrize("opts", [("TEST.SPLIT", "test"), ("TEST.CHECKPOINT_FILE_PATH", "FIRST")],
                         ids=["another split", "another checkpoint"])
def test_testing_runs_when_the_last_validation_differs(opts, tmp_path, fake_data, monkeypatch):
    added = count_scored_views(monkeypatch)
    value = str(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth") if opts[1] == "FIRST" else opts[1]
    result = run(tiny_cfg(tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.EVAL_PERIOD", "2", opts[0], value))
    assert sum(added) == 24  # validation, then the test stage
    assert result.test.checkpoint == (value if opts[1] == "FIRST" else result.training.validation.checkpoint)
    assert result.test.split == ("test" if opts[1] == "test" else "val")


def test_a_training_only_job_summarizes_its_last_epoch(tmp_path, fake_data):
    result = run(tiny_cfg(tmp_path, "TASK", "mae", "SOLVER.MAX_EPOCH", "1"))
    summary = result.summary()
    assert summary["task"] == "mae" and summary["stage"] == "train" and summary["epochs"] == 1
    assert summary["loss"] > 0 and summary["checkpoint"].endswith("checkpoint_epoch_00001.pyth")
    assert result.test is None
