"""Preemption as clusters do it: SIGTERM to the whole process group (main process, loader workers, decode
helpers), sent from outside it, at any point of a job ends the job cleanly (exit 0, "preempted"), and the
same job run again ends with the weights or metrics of an uninterrupted run, no video counted as failed."""
import json

import pytest

from tests.reliability.conftest import (
    REAL_VIDEO_OPTS, assert_same_weights, checkpoint_names, final_weights, job_log, run_in_process,
    run_real_data_in_process, run_worker, write_real_videos,
)

@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """A Kinetics-layout folder: train.csv and val.csv list the same tiny H.264 videos of numbered frames."""
    return write_real_videos(tmp_path_factory.mktemp("videos"), ("train", "val"))


def real_video_opts(folder) -> list[str]:
    """Options of the job on the videos of ``folder``."""
    return [*REAL_VIDEO_OPTS, "DATA.PATH_TO_DATA_DIR", str(folder), "DATA.PATH_PREFIX", str(folder)]


@pytest.fixture(scope="module")
def trained_on_videos(video_folder, tmp_path_factory):
    """The output folder of the real-video job run without interruption."""
    output_dir = tmp_path_factory.mktemp("straight_videos")
    run_real_data_in_process(output_dir, *real_video_opts(video_folder))
    assert checkpoint_names(output_dir) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
    return output_dir


def test_group_sigterm_while_the_decode_helper_works_costs_no_video_and_the_resume_is_exact(
        trained_on_videos, video_folder, tmp_path):
    opts = real_video_opts(video_folder)
    # Before the 2nd video of the first batch: the main process's decode helper gets the signal too.
    stopped = run_worker(tmp_path, *opts, REAL_VIDEOS=1, SIGTERM_GROUP_AT_DECODE=2)
    assert "hook: SIGTERM sent" in stopped.stderr and stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Job preempted (SIGTERM) in epoch 1 after 1 iteration(s)" in stopped.stderr
    run_real_data_in_process(tmp_path, *opts)
    log = job_log(tmp_path)
    assert "(epoch 1, iteration 2)" in log
    assert "decode helper process died" not in log and "cannot decode" not in log
    assert_same_weights(final_weights(tmp_path), final_weights(trained_on_videos))


def test_group_sigterm_while_testing_with_loader_workers_keeps_the_finished_batches(trained_on_videos,
                                                                                    video_folder, tmp_path):
    checkpoint = trained_on_videos / "checkpoints" / "checkpoint_epoch_00002.pyth"
    test_opts = [*real_video_opts(video_folder), "TRAIN.ENABLE", "False", "TEST.ENABLE", "True",
                 "TEST.CHECKPOINT_FILE_PATH", str(checkpoint), "TEST.BATCH_SIZE", "1"]  # 8 batches of 1 video
    run_real_data_in_process(tmp_path / "straight", *test_opts)
    uninterrupted = json.loads((tmp_path / "straight" / "test" / "metrics.json").read_text())

    with_workers = [*test_opts, "DATA_LOADER.NUM_WORKERS", "2"]
    # While the 2nd batch is scored: each worker has delivered one, so both run (past their start-up).
    stopped = run_worker(tmp_path / "job", *with_workers, REAL_VIDEOS=1, SIGTERM_GROUP_AT_TEST_BATCH=2,
                         NUM_WORKERS=2)
    assert "hook: SIGTERM sent" in stopped.stderr and stopped.returncode == 0, stopped.stderr[-3000:]
    assert "killed by signal" not in stopped.stderr
    assert "Job preempted (SIGTERM) while testing, after 2 of 8 batches" in stopped.stderr
    assert (tmp_path / "job" / "test" / "partial_rank0.pyth").is_file()
    run_real_data_in_process(tmp_path / "job", *with_workers)
    assert "Resuming testing after 2 batches" in job_log(tmp_path / "job")
    metrics = json.loads((tmp_path / "job" / "test" / "metrics.json").read_text())
    assert metrics["num_failed"] == 0 and metrics == uninterrupted


@pytest.fixture(scope="module")
def uninterrupted_one_epoch(tmp_path_factory) -> dict:
    """Final weights of one epoch of the MovingSquares job, run without interruption."""
    output_dir = tmp_path_factory.mktemp("straight_one_epoch")
    run_in_process(output_dir, "SOLVER.MAX_EPOCH", "1")
    return final_weights(output_dir)


def test_group_sigterm_before_training_stops_cleanly_and_the_rerun_does_the_whole_job(uninterrupted_one_epoch,
                                                                                        tmp_path):
    stopped = run_worker(tmp_path, "SOLVER.MAX_EPOCH", "1", SIGTERM_GROUP_AT_START_UP=1, NUM_WORKERS=2)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Job preempted (SIGTERM) before training began" in stopped.stderr
    assert "Traceback" not in stopped.stderr and not (tmp_path / "checkpoints").exists()
    run_in_process(tmp_path, "SOLVER.MAX_EPOCH", "1")
    assert "Resuming from" not in job_log(tmp_path)
    assert_same_weights(final_weights(tmp_path), uninterrupted_one_epoch)


def test_group_sigterm_while_building_the_model_stops_after_the_first_step_and_resumes_exactly(
        uninterrupted_one_epoch, tmp_path):
    stopped = run_worker(tmp_path, "SOLVER.MAX_EPOCH", "1", SIGTERM_GROUP_IN_MODEL_BUILD=1)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Job preempted (SIGTERM) in epoch 1 after 1 iteration(s)" in stopped.stderr
    assert checkpoint_names(tmp_path) == ["checkpoint_epoch_00001.pyth"]
    run_in_process(tmp_path, "SOLVER.MAX_EPOCH", "1")
    assert "(epoch 1, iteration 2)" in job_log(tmp_path)
    assert_same_weights(final_weights(tmp_path), uninterrupted_one_epoch)
