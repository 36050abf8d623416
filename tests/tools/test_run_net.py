"""The main job end to end through the command line: synthetic videos -> MAE -> fine-tune -> 3x5 test."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hiera_video.utils.motion_dataset import make_motion_dataset

REPO = Path(__file__).resolve().parents[2]
# One quick epoch on a handful of clips: this checks the wiring, not the accuracy (the demo does that).
QUICK = ["SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "8", "DATA_LOADER.NUM_WORKERS", "0", "LOG_PERIOD", "1"]


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory):
    """A tiny synthetic Kinetics-format dataset: 1 training and 1 test video per class."""
    return make_motion_dataset(tmp_path_factory.mktemp("motion"), {"train": 1, "test": 1})


def run_net(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "run_net.py"), *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def test_pretrain_then_finetune_and_test_from_the_command_line(motion_data, tmp_path):
    data = ["DATA.PATH_TO_DATA_DIR", str(motion_data), "DATA.PATH_PREFIX", str(motion_data)]
    pretrain = run_net("--cfg", "configs/demo/mae_hiera_tiny.yaml", *data, *QUICK, "OUTPUT_DIR", str(tmp_path / "mae"))
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    checkpoint = tmp_path / "mae" / "checkpoints" / "checkpoint_epoch_00001.pyth"
    assert checkpoint.is_file()

    finetune = run_net("--cfg", "configs/demo/hiera_tiny.yaml", "--opts", *data, *QUICK,
                       "OUTPUT_DIR", str(tmp_path / "ft"), "TRAIN.CHECKPOINT_FILE_PATH", str(checkpoint))
    assert finetune.returncode == 0, finetune.stderr[-3000:]
    printed = json.loads(finetune.stdout[finetune.stdout.index("{"):])
    metrics = json.loads((tmp_path / "ft" / "test" / "metrics.json").read_text())
    assert metrics["num_videos"] == metrics["num_evaluated"] == 8 and metrics["num_failed"] == 0
    assert printed["top1"] == pytest.approx(metrics["top1"])
    assert "Initialized weights from" in finetune.stderr


def test_a_typo_in_an_override_is_reported_with_the_closest_key():
    result = run_net("--cfg", "configs/demo/hiera_tiny.yaml", "SOLVER.MAX_EPOCHS", "3")
    assert result.returncode != 0
    assert "unknown config key 'SOLVER.MAX_EPOCHS'" in result.stderr and "SOLVER.MAX_EPOCH" in result.stderr
