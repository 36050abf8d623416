"""TASK ava through the engine: train the tiny detector on generated AVA data, test with frame-mAP."""
import json
import os
import shutil
import signal

import pytest

from hiera_video.engine import find_latest_checkpoint, run
from hiera_video.engine.testing_resume import PreemptedInTesting
from hiera_video.evaluation import ava_testing
from hiera_video.engine.logging import read_stats
from tests.datasets.test_ava_dataset import ava_cfg, ava_root  # noqa: F401 (fixture)

LABEL_MAP = 'item {\n  name: "stand"\n  id: 12\n}\nitem {\n  name: "walk"\n  id: 14\n}\n'


@pytest.fixture
def ava_job(ava_root, tmp_path):  # noqa: F811
    """Config of a tiny AVA job on the generated data (2 epochs, then testing on the proposals)."""
    annotations = tmp_path / "annotations"
    shutil.copytree(ava_root / "annotations", annotations)
    (annotations / "labels.pbtxt").write_text(LABEL_MAP)
    cfg = ava_cfg(ava_root)
    cfg.merge_from_list([
        "TASK", "ava", "OUTPUT_DIR", str(tmp_path / "out"), "TRAIN.DATASET", "ava", "TEST.DATASET", "ava",
        "MODEL.NUM_CLASSES", 80, "MODEL.DROPOUT_RATE", 0.0, "HIERA.EMBED_DIM", 16, "HIERA.NUM_HEADS", 1,
        "HIERA.STAGES", [1, 1, 1, 1], "TRAIN.BATCH_SIZE", 2, "TEST.BATCH_SIZE", 2, "SOLVER.MAX_EPOCH", 2,
        "SOLVER.BASE_LR", 0.1, "TRAIN.EVAL_PERIOD", 0, "TEST.NUM_ENSEMBLE_VIEWS", 1, "TEST.NUM_SPATIAL_CROPS", 1,
        "DATA_LOADER.NUM_WORKERS", 0, "AVA.ANNOTATION_DIR", str(annotations), "AVA.LABEL_MAP_FILE", "labels.pbtxt",
        "AVA.GROUNDTRUTH_FILE", "ava_train_v2.2.csv", "AVA.EXCLUSION_FILE", "", "TRAIN.MAX_FAILED_FRACTION", 1.0,
    ])
    return cfg


def test_ava_training_and_testing_run_through_the_engine(ava_job, tmp_path):
    cfg = ava_job
    metrics = run(cfg).test.metrics
    assert find_latest_checkpoint(cfg.OUTPUT_DIR).name == "checkpoint_epoch_00002.pyth"
    assert [r["epoch"] for r in read_stats(cfg.OUTPUT_DIR) if r["mode"] == "train_epoch"] == [1, 2]
    written = json.loads((tmp_path / "out" / "test" / "ava_metrics.json").read_text())
    assert 0.0 <= written["mAP"] <= 1.0
    assert metrics["mAP"] == pytest.approx(written["mAP"] * 100.0)
    assert metrics["checkpoint"].endswith("checkpoint_epoch_00002.pyth")


def test_sigterm_while_testing_ava_keeps_the_finished_batches(ava_job, tmp_path, monkeypatch):
    cfg = ava_job
    test_dir = tmp_path / "out" / "test"
    run(cfg)
    uninterrupted = [(test_dir / name).read_text() for name in ("ava_metrics.json", "ava_detections.csv")]
    shutil.rmtree(test_dir)
    cfg.TRAIN.ENABLE = False

    original_batch = ava_testing.predict_ava_batch
    calls = []

    def batch_with_signal(model, batch, device):
        calls.append(batch.index.tolist())
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return original_batch(model, batch, device)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(PreemptedInTesting, match="after 1 of 2 batches"):
        patch.setattr(ava_testing, "predict_ava_batch", batch_with_signal)
        run(cfg)
    assert (test_dir / "partial_rank0.pyth").exists() and not (test_dir / "ava_metrics.json").exists()
    monkeypatch.setattr(ava_testing, "predict_ava_batch",
                        lambda *args: (calls.append(args[1].index.tolist()), original_batch(*args))[1])
    run(cfg)
    assert calls == [[0, 1], [2]]  # the rerun scores only the keyframe of the second batch
    assert [(test_dir / name).read_text() for name in ("ava_metrics.json", "ava_detections.csv")] == uninterrupted
    assert not (test_dir / "partial_rank0.pyth").exists()
