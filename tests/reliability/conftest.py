"""Shared jobs of the reliability tests: the tiny training job of train_worker.py, run in a fresh process
(to be killed) or in this one (faster, for the runs nobody kills). Both use one CPU thread, so their
weights are bitwise comparable."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hiera_video.engine import data as engine_data
from hiera_video.datasets.synthetic import numbered_frames, write_video
from hiera_video.engine import find_latest_checkpoint, run
from tests.engine.fakes import MovingSquares, tiny_cfg

WORKER = Path(__file__).with_name("train_worker.py")

NUM_REAL_VIDEOS = 8
# Real decoding through the decode helper (DATA.DECODE_TIMEOUT > 0): 2 epochs of 2 iterations.
REAL_VIDEO_OPTS = ["MODEL.NUM_CLASSES", "2", "DATA.TRAIN_JITTER_SCALES", "[64, 72]", "DATA.SAMPLING_RATE", "2",
                   "DATA.DECODE_TIMEOUT", "60", "SOLVER.MAX_EPOCH", "2", "MODEL.DROP_PATH_RATE", "0.0"]


def write_real_videos(folder: Path, splits=("train",)) -> Path:
    """NUM_REAL_VIDEOS tiny H.264 videos of numbered frames in ``folder``, two classes, listed in
    ``{split}.csv`` for each of ``splits``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = numbered_frames(24, 48, 64)
    for i in range(NUM_REAL_VIDEOS):
        write_video(folder / f"video_{i}.mp4", frames[i:] if i % 2 else frames.flip(0))
    for split in splits:
        (folder / f"{split}.csv").write_text("".join(f"video_{i}.mp4 {i % 2}\n" for i in range(NUM_REAL_VIDEOS)))
    return folder
REPO = WORKER.parents[2]
# 3 epochs of 4 iterations; drop path draws from the global generator, like the augmentation noise.
JOB_OPTS = ["SOLVER.MAX_EPOCH", "3", "MODEL.DROP_PATH_RATE", "0.1"]


def run_worker(output_dir: Path, *opts: str, timeout: float = 120, **hooks: int) -> subprocess.CompletedProcess:
    """Run the tiny training job (with extra ``KEY VALUE`` overrides) in a fresh process with the given
    kill hooks (see train_worker.py)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **{k: str(v) for k, v in hooks.items()}}
    # Its own session: a signal to its process group reaches it and its loader workers, not pytest.
    return subprocess.run([sys.executable, str(WORKER), str(output_dir), *JOB_OPTS, *opts], env=env,
                          capture_output=True, text=True, timeout=timeout, start_new_session=True)


def run_in_process(output_dir: Path, *opts: str) -> None:
    """Run the job of :func:`run_worker` (without hooks) in this process, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(engine_data, "_build_dataset", lambda cfg, split: MovingSquares(16, split))
            run(tiny_cfg(output_dir, "TEST.ENABLE", "False", "DATA_LOADER.NUM_WORKERS", "0", *JOB_OPTS, *opts))
    finally:
        torch.set_num_threads(threads)


def job_log(output_dir: Path) -> str:
    """The log.txt of a job (all its runs)."""
    return (Path(output_dir) / "log.txt").read_text(encoding="utf-8")


def final_weights(output_dir: Path) -> dict:
    """The model state of the newest checkpoint of a job."""
    return torch.load(find_latest_checkpoint(output_dir), weights_only=True)["model_state"]


def assert_same_weights(a: dict, b: dict) -> None:
    """Every tensor of two state dicts is bitwise equal."""
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def checkpoint_names(output_dir: Path) -> list[str]:
    """File names in a job's checkpoint folder, sorted."""
    return sorted(p.name for p in (output_dir / "checkpoints").iterdir())


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory) -> dict:
    """Final weights of the job run without interruption."""
    output_dir = tmp_path_factory.mktemp("straight")
    run_in_process(output_dir)
    assert checkpoint_names(output_dir) == [f"checkpoint_epoch_0000{i}.pyth" for i in (1, 2, 3)]
    return final_weights(output_dir)


def run_real_data_in_process(output_dir: Path, *opts: str) -> None:
    """The job of :func:`run_worker` with ``REAL_VIDEOS=1`` (on the dataset ``opts`` name), in this process,
    on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(tiny_cfg(output_dir, "TEST.ENABLE", "False", "DATA_LOADER.NUM_WORKERS", "0", *JOB_OPTS, *opts))
    finally:
        torch.set_num_threads(threads)
