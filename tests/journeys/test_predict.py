"""``python tools/predict.py CLIP --checkpoint <run_net's checkpoint>`` on a clip run_net tested: the same
whole-video scores as the test stage, with or without ``--window``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.journeys.conftest import CHECKPOINT, DEMO, Command, Job, run_together

NUM_CLASSES = DEMO.num_classes
TEST_VIEWS = DEMO.views  # the demo job's TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS
WINDOW_S = 1.0  # two windows of the 2 s clip


def predict_command(clip: str, checkpoint: str, json_path, *args: str) -> Command:
    """predict.py on one clip with every class in its top-k, records written to ``json_path``."""
    return Command("predict.py", (clip, "--checkpoint", checkpoint, "--device", "cpu", "--top-k", str(NUM_CLASSES),
                                  "--json", str(json_path), *args))


def record_of(job: Job, json_path) -> dict:
    """The clip's record from a successful predict.py job."""
    assert job.returncode == 0, "predict.py failed" + job.diagnosis()
    records = json.loads(json_path.read_text(encoding="utf-8"))
    assert len(records) == 1 and records[0]["error"] is None, records
    assert len(records[0]["top_k"]) == NUM_CLASSES, records[0]
    return records[0]


def scores_by_class(record: dict) -> list[float]:
    """The record's top-k scores by class index."""
    scores = {entry["index"]: entry["score"] for entry in record["top_k"]}
    return [scores[index] for index in range(NUM_CLASSES)]


@pytest.fixture(scope="module")
def clip(motion_lists) -> str:
    """The first video of the demo job's test list."""
    return motion_lists.test_paths["test"][0]


@pytest.fixture(scope="module")
def checkpoint(demo_job) -> str:
    assert demo_job.returncode == 0, "the demo job that trains the checkpoint failed" + demo_job.diagnosis()
    return str(demo_job.file(CHECKPOINT))


@pytest.fixture(scope="module")
def predictions(clip, checkpoint, tmp_path_factory) -> dict:
    """predict.py on the clip with the default views, and with ``--window``, run side by side:
    ``{"whole": (job, its JSON file), "windowed": (job, its JSON file)}``."""
    folder = tmp_path_factory.mktemp("predict")
    paths = {"whole": folder / "whole.json", "windowed": folder / "windowed.json"}
    jobs = run_together(predict_command(clip, checkpoint, paths["whole"]),
                        predict_command(clip, checkpoint, paths["windowed"], "--window", str(WINDOW_S)))
    return {name: (job, paths[name]) for name, job in zip(paths, jobs)}


@pytest.fixture(scope="module")
def whole_video(predictions) -> dict:
    """predict.py's record of the clip with the default views."""
    return record_of(*predictions["whole"])


def test_predict_gives_the_scores_of_the_test_stage(whole_video, clip, demo_job):
    with np.load(demo_job.file("test/predictions.npz")) as tested:
        row = tested["path"].tolist().index(clip)
        # The test stage sums the softmax of the views; predict averages it.
        expected = tested["scores"][row] / TEST_VIEWS
    assert whole_video["views"] == "2x3", whole_video
    np.testing.assert_allclose(scores_by_class(whole_video), expected, atol=2e-6)


def test_a_window_leaves_the_whole_video_scores_unchanged(whole_video, predictions):
    job, json_path = predictions["windowed"]
    windowed = record_of(job, json_path)
    assert [(w["start"], w["end"]) for w in windowed["windows"]] == [(0.0, 1.0), (1.0, 2.0)], windowed
    assert all(len(w["top_k"]) == NUM_CLASSES for w in windowed["windows"]), windowed
    np.testing.assert_allclose(
        scores_by_class(windowed), scores_by_class(whole_video), atol=2e-6,
        err_msg=f"--window changed the whole-video scores (views {windowed['views']} instead of "
                f"{whole_video['views']})" + job.diagnosis())
