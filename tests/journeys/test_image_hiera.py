"""Image Hiera through ``python tools/run_net.py``, the three commands of docs/REPRODUCE.md's ImageNet rows: MAE
pretraining (configs/IN1K/mae_hiera_t.yaml), fine-tuning + testing from its checkpoint (configs/IN1K/hiera_t.yaml)
and testing alone, on a tiny ImageNet-style folder with one corrupt JPEG in train/ and one in val/, which the
jobs must survive, count and name; and a folder without train/ is one error line."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from hiera_video.datasets.synthetic_images import write_image_folder
from tests.journeys.conftest import CHECKPOINT, QUICK, Job, run_net_command, run_together, write_undecodable
from tests.journeys.test_user_errors import assert_one_error_line

NUM_CLASSES = 3
PER_CLASS = {"train": 4, "val": 2}
# The shipped Hiera-T shrunk to 16 channels and one block per stage; a crop of 32 is one 8x8-token mask unit.
TINY_IMAGE_HIERA = ["HIERA.EMBED_DIM", "16", "HIERA.NUM_HEADS", "1", "HIERA.STAGES", "[1, 1, 1, 1]",
                    "MODEL.NUM_CLASSES", str(NUM_CLASSES), "TRAIN.MAX_FAILED_FRACTION", "0.5"]
CLASSIFICATION_OPTS = [*QUICK, *TINY_IMAGE_HIERA, "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
                       "TRAIN.BATCH_SIZE", "4", "TEST.BATCH_SIZE", "4"]
# 64x64 images are 4 mask units: the config's image mask ratio 0.6 keeps int(4 * 0.4) = 1 of them.
MAE_OPTS = [*QUICK, *TINY_IMAGE_HIERA, "DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64",
            "TRAIN.BATCH_SIZE", "4", "MAE.DECODER_EMBED_DIM", "16", "MAE.DECODER_DEPTH", "1",
            "MAE.DECODER_NUM_HEADS", "1"]
SUMMARY_KEYS = {"task", "stage", "split", "top1", "top5", "mean_class_acc", "num_videos", "num_failed", "checkpoint"}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> dict[str, Path]:
    """``train/class_{0,1,2}/`` with 4 JPEGs each and ``val/`` with 2 each, plus one corrupt JPEG in each split."""
    root = write_image_folder(tmp_path_factory.mktemp("imagenet"), NUM_CLASSES, PER_CLASS)
    return {"root": root,
            "broken_train": Path(write_undecodable(root / "train" / "class_0" / "n0_broken.JPEG", 11)),
            "broken_val": Path(write_undecodable(root / "val" / "class_1" / "n1_broken.JPEG", 12))}


@pytest.fixture(scope="module")
def image_jobs(tmp_path_factory, image_folder) -> dict[str, Job]:
    """The fine-tuning, the MAE and the missing-folder commands, run side by side once."""
    out = tmp_path_factory.mktemp("image_jobs")
    data = ["DATA.PATH_TO_DATA_DIR", str(image_folder["root"])]
    commands = {
        "classification": run_net_command("configs/IN1K/hiera_t.yaml", out / "cls", *CLASSIFICATION_OPTS, *data),
        "mae": run_net_command("configs/IN1K/mae_hiera_t.yaml", out / "mae", *MAE_OPTS, *data),
        "no train folder": run_net_command("configs/IN1K/hiera_t.yaml", out / "none", *CLASSIFICATION_OPTS,
                                           "DATA.PATH_TO_DATA_DIR", str(out / "no_imagenet_here")),
    }
    return dict(zip(commands, run_together(*commands.values())))


def assert_names_the_broken_training_image(job: Job, broken: Path) -> None:
    """The log names the corrupt training JPEG and counts it as 1 failure of all training images."""
    log = job.log()
    num_train = NUM_CLASSES * PER_CLASS["train"] + 1
    assert str(broken) in log, "the log never names the corrupt training JPEG" + job.diagnosis()
    assert f"1 of {num_train} videos failed to decode" in log, "the failure is not counted" + job.diagnosis()


def test_fine_tuning_tests_every_val_image_and_counts_the_corrupt_one(image_jobs, image_folder):
    job = image_jobs["classification"]
    assert job.returncode == 0, "the job failed" + job.diagnosis()
    summary = job.summary()
    assert set(summary) == SUMMARY_KEYS, f"summary {summary}" + job.diagnosis()
    num_val = NUM_CLASSES * PER_CLASS["val"]
    assert (summary["task"], summary["split"]) == ("classification", "val")
    assert (summary["num_videos"], summary["num_failed"]) == (num_val + 1, 1), f"summary {summary}" + job.diagnosis()
    assert 0.0 <= summary["top1"] <= summary["top5"] <= 100.0, f"summary {summary}"
    metrics = job.json_file("test/metrics.json")
    assert metrics["num_evaluated"] == num_val, metrics
    assert [failure["path"] for failure in metrics["failed"]] == [str(image_folder["broken_val"])], metrics["failed"]
    assert_names_the_broken_training_image(job, image_folder["broken_train"])


def test_mae_pretrains_on_images_with_the_image_mask_ratio(image_jobs, image_folder):
    job = image_jobs["mae"]
    assert job.returncode == 0, "the job failed" + job.diagnosis()
    summary = job.summary()
    assert (summary["task"], summary["stage"], summary["epochs"]) == ("mae", "train", 1), f"summary {summary}"
    assert math.isfinite(summary["loss"]) and summary["checkpoint"], f"summary {summary}" + job.diagnosis()
    assert "MASK_RATIO: 0.6" in job.file("config.yaml").read_text(encoding="utf-8")
    assert_names_the_broken_training_image(job, image_folder["broken_train"])


@pytest.fixture(scope="module")
def follow_up_jobs(image_jobs, image_folder) -> dict[str, Job]:
    """The guide's next commands: fine-tuning from the MAE job's checkpoint, and testing the fine-tuned job's
    last checkpoint alone (TRAIN.ENABLE False), side by side."""
    data = ["DATA.PATH_TO_DATA_DIR", str(image_folder["root"])]
    mae, finetuned = image_jobs["mae"], image_jobs["classification"]
    from_mae = [*CLASSIFICATION_OPTS, "DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64",
                "TRAIN.CHECKPOINT_FILE_PATH", str(mae.file(CHECKPOINT)), *data]
    commands = {
        "from mae": run_net_command("configs/IN1K/hiera_t.yaml", mae.output_dir.parent / "from_mae", *from_mae),
        "test only": run_net_command("configs/IN1K/hiera_t.yaml", finetuned.output_dir, *CLASSIFICATION_OPTS,
                                     *data, "TRAIN.ENABLE", "False"),
    }
    return dict(zip(commands, run_together(*commands.values())))


def test_fine_tuning_starts_from_the_image_mae_and_testing_runs_alone(follow_up_jobs, image_jobs):
    job = follow_up_jobs["from mae"]
    assert job.returncode == 0, "fine-tuning from the MAE checkpoint failed" + job.diagnosis()
    assert "Initialized weights from" in job.log() and job.summary()["num_failed"] == 1, job.diagnosis()
    job = follow_up_jobs["test only"]
    assert job.returncode == 0, "testing alone failed" + job.diagnosis()
    summary = job.summary()
    assert summary["checkpoint"] == str(image_jobs["classification"].output_dir / CHECKPOINT), f"summary {summary}"
    assert set(summary) == SUMMARY_KEYS and summary["num_failed"] == 1, f"summary {summary}" + job.diagnosis()


def test_a_folder_without_train_is_one_error_line(image_jobs):
    assert_one_error_line(image_jobs["no train folder"], "no train/ folder", "no_imagenet_here")
