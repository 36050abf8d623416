"""The 32-frame SSv2 rows of docs/REPRODUCE.md (paper Table 6) through ``python tools/run_net.py`` on tiny SSv2
data in the official layout: MAE pretraining with configs/SSv2/mae_hiera_l_32x.yaml and fine-tuning + testing
with configs/SSv2/hiera_l_32x.yaml, both keeping their 32 frames (the model shrunk to 16 channels, one block a
stage, 32x32 crops), the test with the 3x2 rows' override ``TEST.NUM_ENSEMBLE_VIEWS 2``. The other rows' configs
differ from the families test_run_net.py runs only in model size or checkpoint path."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests.journeys.conftest import CHECKPOINT, QUICK, TINY_HIERA, run_net_command, run_together

# TINY_HIERA without its 4 frames: the configs' own DATA.NUM_FRAMES (32) stays.
frames = TINY_HIERA.index("DATA.NUM_FRAMES")
TINY_32_FRAMES = [*TINY_HIERA[:frames], *TINY_HIERA[frames + 2:]]
# 32x32x32 clips are 16 mask units of 1x8x8 tokens; the MAE recipe's 4 repeated samples make 8 clips 2 videos.
MAE_OPTS = [*QUICK, *TINY_32_FRAMES, "TRAIN.BATCH_SIZE", "8", "MAE.DECODER_EMBED_DIM", "16", "MAE.DECODER_DEPTH",
            "1", "MAE.DECODER_NUM_HEADS", "1"]
FINETUNE_OPTS = [*QUICK, *TINY_32_FRAMES, "TRAIN.BATCH_SIZE", "4", "TEST.NUM_ENSEMBLE_VIEWS", "2"]


@pytest.fixture(scope="module")
def jobs(ssv2, tmp_path_factory):
    mae_dir, finetune_dir = (tmp_path_factory.mktemp(name) for name in ("ssv2_mae_32x", "ssv2_32x"))
    return run_together(
        run_net_command("configs/SSv2/mae_hiera_l_32x.yaml", mae_dir, *MAE_OPTS, *ssv2.opts),
        run_net_command("configs/SSv2/hiera_l_32x.yaml", finetune_dir, *FINETUNE_OPTS, *ssv2.opts))


def trained_epochs(job) -> list[dict]:
    """The job's train_epoch records of stats.jsonl."""
    records = [json.loads(line) for line in job.file("stats.jsonl").read_text().splitlines() if line.strip()]
    return [record for record in records if record["mode"] == "train_epoch"]


def test_the_32_frame_mae_config_pretrains_one_epoch_on_32_frame_clips(jobs):
    job = jobs[0]
    assert job.returncode == 0, "the job failed" + job.diagnosis()
    job.file(CHECKPOINT)
    assert [r["epoch"] for r in trained_epochs(job)] == [1] and math.isfinite(trained_epochs(job)[0]["loss"])
    state = torch.load(job.file(CHECKPOINT), weights_only=False)["model_state"]
    assert tuple(state["pos_embed_temporal"].shape)[:2] == (1, 16), "not a 32-frame model"


def test_the_32_frame_config_fine_tunes_then_tests_with_3x2_views(jobs, ssv2):
    job = jobs[1]
    assert job.returncode == 0, "the job failed" + job.diagnosis()
    assert [r["epoch"] for r in trained_epochs(job)] == [1] and math.isfinite(trained_epochs(job)[0]["loss"])
    state = torch.load(job.file(CHECKPOINT), weights_only=False)["model_state"]
    assert tuple(state["pos_embed_temporal"].shape)[:2] == (1, 16), "not a 32-frame model"
    listed = ssv2.test_paths["val"]
    with np.load(job.file("test/predictions.npz")) as data:
        assert sorted(data["path"].tolist()) == sorted(listed)
        # Each row sums the softmax of its 3 crops x 2 clips.
        np.testing.assert_allclose(data["scores"].sum(axis=1), 6, rtol=1e-4)
    assert job.json_file("test/metrics.json")["num_failed"] == 0
