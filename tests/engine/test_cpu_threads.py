"""The model leaves the CPU cores to the loader workers, unless the user chose a thread count."""
import pytest
import torch

from hiera_video.config.defaults import get_cfg
from hiera_video.engine.data import leave_cores_to_loader_workers


@pytest.fixture
def four_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def config_with_workers(workers: int):
    cfg = get_cfg()
    cfg.DATA_LOADER.NUM_WORKERS = workers
    return cfg


def test_cpu_model_gets_the_cores_workers_leave(four_threads, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    leave_cores_to_loader_workers(config_with_workers(3), torch.device("cpu"))
    assert torch.get_num_threads() == 1
    torch.set_num_threads(4)
    leave_cores_to_loader_workers(config_with_workers(6), torch.device("cpu"))
    assert torch.get_num_threads() == 1  # never below one
    torch.set_num_threads(4)
    leave_cores_to_loader_workers(config_with_workers(0), torch.device("cpu"))
    assert torch.get_num_threads() == 4


def test_gpu_runs_and_an_explicit_thread_count_are_left_alone(four_threads, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    leave_cores_to_loader_workers(config_with_workers(2), torch.device("cuda", 0))
    assert torch.get_num_threads() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    leave_cores_to_loader_workers(config_with_workers(2), torch.device("cpu"))
    assert torch.get_num_threads() == 4
