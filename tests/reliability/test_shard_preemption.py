"""Preemption on shards: SIGTERM to the process group mid-epoch of a job reading tar shards ends it cleanly,
and the same job run again ends with the weights of an uninterrupted run on the videos as files."""
import pytest

from hiera_video.datasets.shards import make_shards
from tests.reliability.conftest import (
    REAL_VIDEO_OPTS as OPTS, assert_same_weights, checkpoint_names, final_weights, job_log,
    run_real_data_in_process, run_worker, write_real_videos,
)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """train.csv of tiny H.264 videos in ``videos/`` and its shards (3 videos each) in ``shards/``."""
    folder = tmp_path_factory.mktemp("sharded")
    write_real_videos(folder / "videos")
    make_shards(str(folder / "videos" / "train.csv"), str(folder / "shards"), "train", str(folder / "videos"),
                max_per_shard=3, progress=False)
    return folder


def test_group_sigterm_mid_epoch_on_shards_resumes_to_the_weights_of_the_files(sharded, tmp_path):
    files = ["DATA.PATH_TO_DATA_DIR", str(sharded / "videos"), "DATA.PATH_PREFIX", str(sharded / "videos")]
    run_real_data_in_process(tmp_path / "files", *OPTS, *files)
    shards = [*OPTS, "DATA.FORMAT", "shards", "DATA.PATH_TO_DATA_DIR", str(sharded / "shards")]
    # Before the 2nd video of the first batch: the main process's decode helper gets the signal too.
    stopped = run_worker(tmp_path / "job", *shards, REAL_VIDEOS=1, SIGTERM_GROUP_AT_DECODE=2)
    assert "hook: SIGTERM sent" in stopped.stderr and stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Job preempted (SIGTERM) in epoch 1 after 1 iteration(s)" in stopped.stderr
    run_real_data_in_process(tmp_path / "job", *shards)
    log = job_log(tmp_path / "job")
    assert "(epoch 1, iteration 2)" in log and "cannot decode" not in log
    assert checkpoint_names(tmp_path / "job") == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
    assert_same_weights(final_weights(tmp_path / "job"), final_weights(tmp_path / "files"))
