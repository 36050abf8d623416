"""``python tools/run_net.py --cfg <shipped config>`` for every config family, on tiny data in the dataset's
real layout: one epoch of training, then testing, in a fresh process; then the same with one undecodable
video in training and in testing, which the job must survive and report."""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest

from tests.journeys.conftest import (
    AVA_TRAIN_VIDEOS, CHECKPOINT, DEMO, KINETICS_CLASSES, QUICK, TINY_HIERA, Family, Job, run_command, run_net_command,
)

# Kinetics recipe: AUG.NUM_SAMPLE 2, so 4 clips per step are 2 videos; 2 x 3 test views.
KINETICS_OPTS = [*QUICK, *TINY_HIERA, "TRAIN.BATCH_SIZE", "4", "TEST.NUM_ENSEMBLE_VIEWS", "2",
                 "TEST.NUM_SPATIAL_CROPS", "3"]
# The official CSVs' classes are the sorted labels of train.csv: 3 here, not the release's 600 / 700.
OFFICIAL_CSV_OPTS = [*KINETICS_OPTS, "MODEL.NUM_CLASSES", str(len(KINETICS_CLASSES))]
# SSv2 keeps its config's 1 x 3 test views.
SSV2_OPTS = [*QUICK, *TINY_HIERA, "TRAIN.BATCH_SIZE", "4"]
# MAE recipe: AUG.NUM_SAMPLE 4, so 8 clips are 2 videos; a 16-wide one-block decoder. 4x32x32 clips are
# 2 mask units of 1x8x8 tokens: the paper's 0.9 ratio would keep none, 0.5 keeps one.
MAE_OPTS = [*QUICK, *TINY_HIERA, "TRAIN.BATCH_SIZE", "8", "MAE.DECODER_EMBED_DIM", "16", "MAE.DECODER_DEPTH", "1",
            "MAE.DECODER_NUM_HEADS", "1", "MAE.MASK_RATIO", "0.5"]
AVA_OPTS = [*QUICK, *TINY_HIERA, "TRAIN.BATCH_SIZE", "2"]

CLASSIFICATION = [
    Family("K400", "configs/K400/hiera_b.yaml", tuple(KINETICS_OPTS), "kinetics_lists", 400, views=6),
    Family("K600", "configs/K600/hiera_b.yaml", tuple(OFFICIAL_CSV_OPTS), "kinetics_official_flat", 3, views=6),
    Family("K700", "configs/K700/hiera_b.yaml", tuple(OFFICIAL_CSV_OPTS), "kinetics_official_class_folders", 3,
           views=6),
    Family("SSv2", "configs/SSv2/hiera_b.yaml", tuple(SSV2_OPTS), "ssv2", 174, views=3),
    DEMO,
]
MAE = [
    Family("K400-MAE", "configs/K400/mae_hiera_b.yaml", tuple(MAE_OPTS), "kinetics_lists"),
    Family("SSv2-MAE", "configs/SSv2/mae_hiera_b.yaml", tuple(MAE_OPTS), "ssv2"),
]
AVA = Family("AVA", "configs/AVA/hiera_b.yaml", tuple(AVA_OPTS), "ava")


def without_extension(path: str) -> str:
    """``path`` without its extension: Kinetics finds a listed ``.mp4`` saved as ``.webm``."""
    return os.path.splitext(path)[0]


def assert_succeeded(job: Job) -> None:
    assert job.returncode == 0, "the job failed" + job.diagnosis()


def assert_trained_one_epoch(job: Job) -> None:
    """The epoch's checkpoint is written and its logged mean loss is a number."""
    job.file(CHECKPOINT)
    records = [json.loads(line) for line in job.file("stats.jsonl").read_text().splitlines() if line.strip()]
    epochs = [record for record in records if record["mode"] == "train_epoch"]
    assert [record["epoch"] for record in epochs] == [1], f"epoch records {epochs}" + job.diagnosis()
    assert math.isfinite(epochs[0]["loss"]), f"training loss {epochs[0]['loss']}" + job.diagnosis()


def assert_training_reported(job: Job, broken_video: str, num_videos: int = 0) -> None:
    """The undecodable training video is named in the job's log and, with ``num_videos``, counted as the
    one failure among them."""
    log = job.log()
    assert without_extension(broken_video) in log, (
        f"the log never names the undecodable training video {broken_video}" + job.diagnosis())
    if num_videos:
        assert re.search(rf"\b1 of {num_videos} videos\b", log), (
            f"the log does not count 1 failed video of {num_videos}" + job.diagnosis())


def predictions_of(job: Job) -> dict:
    with np.load(job.file("test/predictions.npz")) as data:
        return {key: data[key] for key in data.files}


# -------------------------------------------------------------------------------------------------------
# Classification: K400, K600, K700, SSv2, demo
# -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", CLASSIFICATION, ids=str)
def test_config_trains_one_epoch_then_tests_every_listed_video(family, request, family_jobs):
    layout = request.getfixturevalue(family.layout)
    job, _ = family_jobs(family, layout)
    assert_succeeded(job)
    assert_trained_one_epoch(job)

    listed = layout.test_paths[family.test_split]
    metrics = job.json_file("test/metrics.json")
    counts = {key: metrics.get(key) for key in ("num_videos", "num_evaluated", "num_failed", "failed")}
    assert counts == {"num_videos": len(listed), "num_evaluated": len(listed), "num_failed": 0, "failed": []}, (
        f"metrics.json {metrics}" + job.diagnosis())
    assert metrics["checkpoint"] == str(job.output_dir / CHECKPOINT)
    predictions = predictions_of(job)
    assert sorted(predictions["path"].tolist()) == sorted(listed)
    # Each video's row sums the softmax of all its views: every view was scored.
    assert predictions["scores"].shape == (len(listed), family.num_classes)
    np.testing.assert_allclose(predictions["scores"].sum(axis=1), family.views, rtol=1e-4)

    summary = job.summary()
    assert (summary["num_videos"], summary["num_failed"]) == (len(listed), 0), f"summary {summary}" + job.diagnosis()
    assert summary["top1"] == pytest.approx(metrics["top1"]) and summary["top5"] == pytest.approx(metrics["top5"])


@pytest.mark.parametrize("family", CLASSIFICATION, ids=str)
def test_an_undecodable_video_is_replaced_in_training_and_listed_as_failed_in_testing(family, request,
                                                                                    family_jobs):
    layout = request.getfixturevalue(family.layout)
    _, job = family_jobs(family, layout)
    assert_succeeded(job)
    assert_trained_one_epoch(job)
    assert_training_reported(job, layout.broken_train, num_videos=layout.num_train)

    decodable = layout.test_paths[family.test_split]
    metrics = job.json_file("test/metrics.json")
    counts = {key: metrics.get(key) for key in ("num_videos", "num_evaluated", "num_failed")}
    assert counts == {"num_videos": len(decodable) + 1, "num_evaluated": len(decodable), "num_failed": 1}, (
        f"metrics.json {metrics}" + job.diagnosis())
    assert [without_extension(failure["path"]) for failure in metrics["failed"]] == [
        without_extension(layout.broken_test)], metrics["failed"]
    assert metrics["failed"][0]["error"], "the failure gives no reason"
    assert sorted(predictions_of(job)["path"].tolist()) == sorted(decodable)

    summary = job.summary()
    assert (summary["num_videos"], summary["num_failed"]) == (len(decodable) + 1, 1), (
        f"summary {summary}" + job.diagnosis())


# -------------------------------------------------------------------------------------------------------
# MAE pretraining (no test stage): K400 and SSv2
# -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", MAE, ids=str)
def test_mae_config_pretrains_one_epoch(family, request, family_jobs):
    layout = request.getfixturevalue(family.layout)
    job, _ = family_jobs(family, layout)
    assert_succeeded(job)
    assert_trained_one_epoch(job)
    assert not (job.output_dir / "test").exists(), "MAE pretraining has no test stage"
    loss = job.summary()["loss"]
    assert math.isfinite(loss) and loss > 0, f"summary loss {loss}" + job.diagnosis()


@pytest.mark.parametrize("family", MAE, ids=str)
def test_mae_pretraining_replaces_an_undecodable_video(family, request, family_jobs):
    layout = request.getfixturevalue(family.layout)
    _, job = family_jobs(family, layout)
    assert_succeeded(job)
    assert_trained_one_epoch(job)
    assert_training_reported(job, layout.broken_train, num_videos=layout.num_train)


# -------------------------------------------------------------------------------------------------------
# AVA: extracted frames, and trimmed videos
# -------------------------------------------------------------------------------------------------------
def detection_keys(job: Job) -> list[str]:
    """``video_id,timestamp`` of every row of the detections file the test stage wrote."""
    lines = job.file("test/ava_detections.csv").read_text().splitlines()
    return [",".join(line.split(",")[:2]) for line in lines]


def assert_ava_summary(job: Job, metrics: dict, num_failed: int) -> None:
    summary = job.summary()
    assert summary["task"] == "ava" and summary["num_failed"] == num_failed, f"summary {summary}" + job.diagnosis()
    assert metrics["num_failed_keyframes"] == num_failed, metrics
    # The engine reports frame-mAP in percent; ava_metrics.json keeps the evaluator's [0, 1].
    assert summary["mAP"] == pytest.approx(metrics["mAP"] * 100), summary


def test_ava_config_trains_on_extracted_frames_and_tests_on_proposals(ava, family_jobs):
    job, _ = family_jobs(AVA, ava)
    assert_succeeded(job)
    assert_trained_one_epoch(job)

    metrics = job.json_file("test/ava_metrics.json")
    assert 0.0 <= metrics["mAP"] <= 1.0, metrics
    assert metrics["num_groundtruth_keys"] == metrics["num_detection_keys"] == len(ava.test_keys), metrics
    assert metrics["groundtruth_keys_without_detections"] == [], metrics
    assert not [w for w in metrics["warnings"] if "failed" in w], metrics["warnings"]
    # One row per proposal above AVA.DETECTION_SCORE_THRESH and label-map class.
    keys = detection_keys(job)
    assert len(keys) == ava.test_boxes * ava.num_label_map_classes and set(keys) == set(ava.test_keys)
    assert_ava_summary(job, metrics, num_failed=0)


def test_ava_on_trimmed_videos_lists_the_keyframes_of_an_undecodable_video_as_failed(ava, family_jobs):
    _, job = family_jobs(AVA, ava)
    assert_succeeded(job)
    assert_trained_one_epoch(job)
    # Failures count videos, not keyframes: one of the 3 training videos.
    assert_training_reported(job, ava.broken_train, num_videos=len(AVA_TRAIN_VIDEOS) + 1)

    metrics = job.json_file("test/ava_metrics.json")
    failed = [warning for warning in metrics["warnings"] if "failed to decode" in warning]
    assert len(failed) == 1 and all(key in failed[0] for key in ava.broken_val_keys), metrics["warnings"]
    assert sorted(item["keyframe"] for item in metrics["failed_keyframes"]) == sorted(ava.broken_val_keys), metrics
    assert sorted(metrics["groundtruth_keys_without_detections"]) == sorted(ava.broken_val_keys), metrics
    keys = detection_keys(job)
    assert len(keys) == ava.test_boxes * ava.num_label_map_classes and set(keys) == set(ava.test_keys)
    assert_ava_summary(job, metrics, num_failed=len(ava.broken_val_keys))


# -------------------------------------------------------------------------------------------------------
# A user's mistake
# -------------------------------------------------------------------------------------------------------
def test_a_data_folder_that_does_not_exist_stops_the_job_naming_it(tmp_path):
    missing = tmp_path / "kinetics400_not_downloaded"
    job = run_command(run_net_command("configs/K400/hiera_b.yaml", tmp_path / "out", *KINETICS_OPTS,
                                      "DATA.PATH_TO_DATA_DIR", str(missing)))
    assert job.returncode != 0, "the job succeeded without data" + job.diagnosis()
    assert str(missing) in job.stderr, "stderr does not name the missing folder" + job.diagnosis()
