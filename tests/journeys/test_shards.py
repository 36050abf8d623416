"""Sharded and remote data, and more than one process or machine, through the real commands: the tiny
PySlowFast K400 lists written into shards by ``tools/make_shards.py``, then ``tools/run_net.py`` with the
demo config trains and tests on the shards (locally, over HTTP from a server on 127.0.0.1, under torchrun
with 2 processes, and as 2 torchrun "nodes") with the weights and metrics of the run on the files."""
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.journeys.conftest import (
    CHECKPOINT, COMMAND_TIMEOUT_S, QUICK, REPO, Command, Job, run_command, run_net_command, run_together,
)
from tests.loopback_http import serve_folder

CONFIG = "configs/demo/hiera_tiny.yaml"
# The demo's tiny model on the K400 lists (400 classes), tested on val with 2 x 3 views.
OPTS = (*QUICK, "TRAIN.BATCH_SIZE", "2", "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "3",
        "MODEL.NUM_CLASSES", "400", "TEST.SPLIT", "val")
METRIC_KEYS = ("top1", "top5", "mean_class_acc", "num_videos", "num_evaluated", "num_failed")


def list_folders(layout) -> tuple[str, str, str]:
    """(clean list folder, broken list folder, video folder) of a :class:`Layout`."""
    return layout.opts[1], layout.broken_opts[1], layout.opts[3]


@pytest.fixture(scope="module")
def kinetics_shards(kinetics_lists, tmp_path_factory) -> dict:
    """``tools/make_shards.py`` run on every split of the clean and the broken lists, 2 videos per shard:
    ``{"clean": folder, "broken": folder}``."""
    clean, broken, videos = list_folders(kinetics_lists)
    root = tmp_path_factory.mktemp("kinetics_shards")
    folders = {"clean": root / "clean", "broken": root / "broken"}
    commands = [Command("make_shards.py", (f"{lists}/{split}.csv", "--prefix", videos, "--out", str(folders[variant]),
                                           "--max-per-shard", "2"))
                for variant, lists in (("clean", clean), ("broken", broken)) for split in ("train", "val", "test")]
    for job in run_together(*commands):
        assert job.returncode == 0 and " videos in " in job.stdout, job.diagnosis()
    return folders


def shard_opts(folder) -> list[str]:
    """Options reading the shards of ``folder`` (a path or URL)."""
    return ["DATA.FORMAT", "shards", "DATA.PATH_TO_DATA_DIR", str(folder)]


def metrics_of(job: Job) -> dict:
    """The test metrics a job wrote (only the headline keys), asserting it succeeded."""
    assert job.returncode == 0, "the job failed" + job.diagnosis()
    metrics = job.json_file("test/metrics.json")
    return {key: metrics[key] for key in METRIC_KEYS}


def scores_of(job: Job) -> np.ndarray:
    """Per-video test scores, by video index."""
    with np.load(job.file("test/predictions.npz")) as data:
        return data["scores"][np.argsort(data["index"])]


def weights_of(job: Job) -> dict:
    """The trained model state of a job."""
    return torch.load(job.file(CHECKPOINT), weights_only=True)["model_state"]


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    """Every tensor of two state dicts equal (within ``atol``)."""
    different = [key for key in a if not torch.allclose(a[key], b[key], atol=atol, rtol=0)]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def file_and_shard_jobs(kinetics_lists, kinetics_shards, tmp_path_factory) -> dict:
    """The job on the files, on the shards, and on the shards of the lists with an undecodable video each."""
    out = tmp_path_factory.mktemp("shard_jobs")
    files, shards, broken = run_together(
        run_net_command(CONFIG, out / "files", *OPTS, *kinetics_lists.opts),
        run_net_command(CONFIG, out / "shards", *OPTS, *shard_opts(kinetics_shards["clean"])),
        run_net_command(CONFIG, out / "broken", *OPTS, *shard_opts(kinetics_shards["broken"]),
                        "TRAIN.MAX_FAILED_FRACTION", "0.5"))
    return {"files": files, "shards": shards, "broken": broken}


def test_make_shards_writes_a_manifest_of_every_video(kinetics_shards, kinetics_lists):
    manifest = json.loads((kinetics_shards["clean"] / "train.json").read_text())
    assert manifest["total"] == kinetics_lists.num_train and [s["count"] for s in manifest["shards"]] == [2, 2]
    assert len(manifest["class_names"]) == 400 and manifest["source"].endswith("train.csv")
    assert sorted(os.listdir(kinetics_shards["clean"])) == [
        "test-000000.tar", "test-000001.tar", "test.json", "train-000000.tar", "train-000001.tar", "train.json",
        "val-000000.tar", "val-000001.tar", "val.json"]


def test_training_and_testing_on_shards_gives_the_weights_and_metrics_of_the_files(file_and_shard_jobs):
    files, shards = file_and_shard_jobs["files"], file_and_shard_jobs["shards"]
    assert metrics_of(shards) == metrics_of(files)
    assert metrics_of(shards)["num_videos"] == 3
    assert shards.summary()["top1"] == files.summary()["top1"]
    assert_same_weights(weights_of(shards), weights_of(files))
    np.testing.assert_array_equal(scores_of(shards), scores_of(files))


def test_an_undecodable_member_is_replaced_in_training_and_listed_as_failed_in_testing(file_and_shard_jobs):
    job = file_and_shard_jobs["broken"]
    metrics = metrics_of(job)
    assert (metrics["num_videos"], metrics["num_evaluated"], metrics["num_failed"]) == (4, 3, 1), job.diagnosis()
    failed = job.json_file("test/metrics.json")["failed"]
    assert failed[0]["path"].endswith("val-000001.tar/00000003_broken_val_000000_000010.mp4") and failed[0]["error"]
    log = job.log()
    assert "00000003_broken_train_000000_000010.mp4" in log and "1 of 4 videos" in log, job.diagnosis()


def test_a_missing_manifest_is_one_error_line(tmp_path):
    job = run_command(run_net_command(CONFIG, tmp_path / "out", *OPTS, *shard_opts(tmp_path)))
    assert job.returncode != 0 and job.stderr.strip().splitlines()[-1].startswith("error: no shard manifest "), (
        job.diagnosis())
    assert f"{tmp_path}/train.json" in job.stderr


def test_shards_lists_videos_and_checkpoints_are_read_over_http(file_and_shard_jobs, kinetics_lists,
                                                                 kinetics_shards, tmp_path, monkeypatch):
    monkeypatch.setenv("HIERA_VIDEO_CACHE", str(tmp_path / "cache"))
    root = Path(os.path.commonpath([kinetics_shards["clean"], list_folders(kinetics_lists)[0]]))
    files = file_and_shard_jobs["files"]
    with serve_folder(root) as (url, requested):
        def at(path) -> str:
            return f"{url}/{Path(path).relative_to(root)}"

        clean, _, videos = list_folders(kinetics_lists)
        shards, tested = run_together(
            run_net_command(CONFIG, tmp_path / "shards", *OPTS, *shard_opts(at(kinetics_shards["clean"])),
                            "DATA_LOADER.NUM_WORKERS", "2"),
            run_net_command(CONFIG, tmp_path / "files", *OPTS, "TRAIN.ENABLE", "False", "DATA.PATH_TO_DATA_DIR",
                            at(clean), "DATA.PATH_PREFIX", at(videos), "TEST.CHECKPOINT_FILE_PATH",
                            at(files.file(CHECKPOINT))))
    assert metrics_of(shards) == metrics_of(files) == metrics_of(tested)
    assert_same_weights(weights_of(shards), weights_of(files))
    np.testing.assert_array_equal(scores_of(tested), scores_of(files))
    assert any(path.endswith("train-000001.tar") for path in requested)
    assert any(path.endswith(".mp4") for path in requested) and any(path.endswith(".pyth") for path in requested)


def torchrun(output_dir: Path, *args: str, opts=()) -> list[str]:
    """``python -m torch.distributed.run ARGS tools/run_net.py --cfg CONFIG ...`` (gloo on CPU)."""
    return [sys.executable, "-m", "torch.distributed.run", *args, str(REPO / "tools" / "run_net.py"), "--cfg",
            CONFIG, "OUTPUT_DIR", str(output_dir), *OPTS, *opts]


def run_processes(*commands: list[str]) -> list[Job]:
    """Run ``commands`` at the same time on one CPU thread each; their jobs in order."""
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"

    def run(command: list[str]) -> Job:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT_S)
        return Job(command, result.returncode, result.stdout, result.stderr,
                   Path(command[command.index("OUTPUT_DIR") + 1]))

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(run, commands))


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_and_two_nodes_on_shards_give_the_metrics_of_one_process(file_and_shard_jobs,
                                                                                kinetics_shards, tmp_path):
    one = file_and_shard_jobs["shards"]
    opts = shard_opts(kinetics_shards["clean"])
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint,
             "--rdzv_id", "shards"]
    two, node0, node1 = run_processes(
        torchrun(tmp_path / "two", "--standalone", "--nproc_per_node", "2", opts=opts),
        torchrun(tmp_path / "nodes", *nodes, "--node_rank", "0", opts=opts),
        torchrun(tmp_path / "nodes", *nodes, "--node_rank", "1", opts=opts))
    for job in (two, node0, node1):
        assert job.returncode == 0, job.diagnosis()
    assert "2 process(es)" in two.log() and "2 process(es)" in node0.log()
    for job in (two, node0):
        assert metrics_of(job) == metrics_of(one)
        assert_same_weights(weights_of(job), weights_of(one), atol=1e-5)
        np.testing.assert_allclose(scores_of(job), scores_of(one), atol=1e-5)
