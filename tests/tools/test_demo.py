"""The built-in demo (python tools/run_net.py --demo) learns the synthetic motion classes end to end."""
import os

import pytest

from hiera_video.engine.demo import run_demo
from hiera_video.utils.motion_dataset import CLASS_NAMES


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HIERA_VIDEO_SLOW_TESTS") != "1",
                    reason="the full demo takes minutes on CPU; set HIERA_VIDEO_SLOW_TESTS=1 to run it")
def test_demo_pretrains_finetunes_and_tests_well_above_chance(tmp_path):
    metrics = run_demo(["OUTPUT_DIR", str(tmp_path)]).test.metrics
    chance = 100.0 / len(CLASS_NAMES)
    assert metrics["num_videos"] == metrics["num_evaluated"] == 6 * len(CLASS_NAMES)
    assert metrics["top1"] > 5 * chance
    assert (tmp_path / "mae" / "checkpoints").is_dir() and (tmp_path / "finetune" / "test" / "metrics.json").is_file()
