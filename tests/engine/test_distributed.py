"""Two CPU processes (torchrun, gloo) give the results of one process, and count every video once."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from hiera_video.engine import find_latest_checkpoint

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("distributed_worker.py")
# 11 test videos do not split evenly over 2 processes: the sampler pads one shard with a repeat.
JOB = ["11", "5", "SOLVER.MAX_EPOCH", "2", "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "1"]


def run_job(output_dir: Path, processes: int) -> None:
    """Run the worker job under torchrun with ``processes`` CPU processes."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               str(WORKER), str(output_dir), *JOB]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_gloo_processes_match_one_process(tmp_path):
    run_job(tmp_path / "one", 1)
    run_job(tmp_path / "two", 2)

    one = torch.load(find_latest_checkpoint(tmp_path / "one"), weights_only=True)["model_state"]
    two = torch.load(find_latest_checkpoint(tmp_path / "two"), weights_only=True)["model_state"]
    assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)

    metrics = {n: json.loads((tmp_path / n / "test" / "metrics.json").read_text()) for n in ("one", "two")}
    assert metrics["two"]["num_videos"] == 11 and metrics["two"]["num_evaluated"] == 10
    assert metrics["two"]["num_failed"] == 1 and metrics["two"]["failed"][0]["index"] == 5
    for key in ("top1", "top5", "mean_class_acc", "num_evaluated"):
        assert metrics["two"][key] == metrics["one"][key]
    predictions = {n: np.load(tmp_path / n / "test" / "predictions.npz") for n in ("one", "two")}
    np.testing.assert_array_equal(predictions["one"]["index"], predictions["two"]["index"])
    np.testing.assert_allclose(predictions["one"]["scores"], predictions["two"]["scores"], atol=1e-5)
