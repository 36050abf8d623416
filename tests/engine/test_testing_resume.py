"""Resumable testing: SIGTERM during the test stage keeps the finished batches; the next run gives the
metrics of an uninterrupted one."""
import json
import os
import shutil
import signal

import numpy as np
import pytest
import torch

from hiera_video.engine import run
from hiera_video.engine.view_scorer import ViewScorer
from hiera_video.engine import testing_resume
from hiera_video.engine.testing_resume import PreemptedInTesting, ResumableTesting
from tests.engine.fakes import tiny_cfg

ORIGINAL_ADD = ViewScorer.add

# 12 test videos, 2 of them failing, 3 views each, 2 videos per loader batch: 6 batches.
TEST_OPTS = ("TRAIN.ENABLE", "False", "TEST.NUM_ENSEMBLE_VIEWS", "3", "TEST.BATCH_SIZE", "6")


@pytest.fixture
def trained(tmp_path_factory, fake_data):
    """(OUTPUT_DIR of a 1-epoch training, its uninterrupted test results: metrics.json and scores)."""
    output_dir = tmp_path_factory.mktemp("trained")
    run(tiny_cfg(output_dir, "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "1"))
    fake_data["failing"] = (3, 8)
    run(tiny_cfg(output_dir, *TEST_OPTS))
    return output_dir, read_results(output_dir)


def read_results(output_dir):
    """The metrics.json (without the checkpoint path) and predictions.npz of a test run."""
    metrics = json.loads((output_dir / "test" / "metrics.json").read_text())
    predictions = dict(np.load(output_dir / "test" / "predictions.npz"))
    shutil.rmtree(output_dir / "test")
    return metrics, predictions


def preempt_testing_at(output_dir, batch: int) -> PreemptedInTesting:
    """Run the test job with SIGTERM arriving while its ``batch``-th batch is scored (1-based); return the
    PreemptedInTesting it stops with."""
    calls = {"n": 0}

    def add_with_signal(self, *args):
        calls["n"] += 1
        if calls["n"] == batch:
            os.kill(os.getpid(), signal.SIGTERM)
        return ORIGINAL_ADD(self, *args)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(PreemptedInTesting) as stopped:
        patch.setattr(ViewScorer, "add", add_with_signal)
        run(tiny_cfg(output_dir, *TEST_OPTS))
    return stopped.value


def assert_same_results(results, expected):
    metrics, predictions = results
    expected_metrics, expected_predictions = expected
    assert metrics == expected_metrics
    assert predictions.keys() == expected_predictions.keys()
    for key in predictions:
        np.testing.assert_allclose(predictions[key], expected_predictions[key], rtol=1e-6) if key == "scores" \
            else np.testing.assert_array_equal(predictions[key], expected_predictions[key])


def test_sigterm_while_testing_keeps_the_finished_batches_and_the_rerun_completes_them(trained, monkeypatch):
    output_dir, uninterrupted = trained
    handler = signal.getsignal(signal.SIGTERM)
    assert "while testing, after 3 of 6 batches" in str(preempt_testing_at(output_dir, 3))
    assert signal.getsignal(signal.SIGTERM) is handler
    partial = torch.load(output_dir / "test" / "partial_rank0.pyth", weights_only=True)
    assert partial["batches_done"] == 3 and partial["payload"]["index"].tolist() == [0, 1, 2, 4, 5]  # 3 failed
    assert list(partial["payload"]["failures"]) == [3] and not (output_dir / "test" / "metrics.json").exists()

    scored = []
    monkeypatch.setattr(ViewScorer, "add", lambda self, views, index: (scored.extend(index.tolist()),
                                                                       ORIGINAL_ADD(self, views, index)))
    run(tiny_cfg(output_dir, *TEST_OPTS))
    assert scored == [6, 7, 9, 10, 11]  # only the videos of the batches left (video 8 failed)
    assert "Resuming testing after 3 batches" in (output_dir / "log.txt").read_text()
    assert not (output_dir / "test" / "partial_rank0.pyth").exists()
    assert_same_results(read_results(output_dir), uninterrupted)


def test_a_partial_file_of_another_checkpoint_or_config_is_not_reused(trained):
    output_dir, uninterrupted = trained
    preempt_testing_at(output_dir, 2)
    checkpoint = output_dir / "checkpoints" / "checkpoint_epoch_00001.pyth"
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as if training wrote it again
    run(tiny_cfg(output_dir, *TEST_OPTS[:-1], "9"))  # and 3 videos per batch
    log = (output_dir / "log.txt").read_text()
    assert "it was written for another test (checkpoint, config, batch_size changed); testing starts over" in log
    assert "Resuming testing" not in log
    assert read_results(output_dir)[0] == uninterrupted[0]


def test_a_corrupt_partial_file_only_costs_its_batches(trained):
    output_dir, uninterrupted = trained
    preempt_testing_at(output_dir, 4)
    partial = output_dir / "test" / "partial_rank0.pyth"
    partial.write_bytes(partial.read_bytes()[:100])
    run(tiny_cfg(output_dir, *TEST_OPTS))
    assert "Ignoring" in (output_dir / "log.txt").read_text() and not partial.exists()
    assert_same_results(read_results(output_dir), uninterrupted)


def test_partial_files_covering_different_batches_on_different_processes_start_over(tmp_path, monkeypatch):
    # Each process's per-batch stop check is a collective: if one resumed after 3 batches and another after
    # none, they would pair different collectives. They must all start over.
    resumable = ResumableTesting(str(tmp_path), 0, {"checkpoint": [None]}, guard=None)
    resumable.save(3, {"index": torch.tensor([1, 2])})
    assert testing_resume.restore_on_every_process(resumable)[0] == 3  # alone, it resumes
    monkeypatch.setattr(testing_resume, "all_gather_objects", lambda batches_done: [batches_done, 0])
    assert testing_resume.restore_on_every_process(resumable) == (0, None)
