"""What a user sees: tqdm only on rank 0 in a terminal, JSON lines, TensorBoard when installed."""
import sys
import types

from hiera_video.engine.logging import StatsWriter, progress, read_stats


def test_progress_bars_show_only_on_rank_0_in_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress(range(3), is_main=True).disable  # a log file or CI: quiet
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not progress(range(3), is_main=True).disable
    assert progress(range(3), is_main=False).disable
    assert list(progress(range(3), is_main=False)) == [0, 1, 2]  # quiet bars still iterate


def test_records_are_json_lines_and_only_rank_0_writes(tmp_path):
    StatsWriter(str(tmp_path), is_main=True, tensorboard=False).write({"mode": "train_epoch", "epoch": 1, "loss": 0.5})
    StatsWriter(str(tmp_path), is_main=False, tensorboard=False).write({"mode": "train_epoch", "epoch": 1, "loss": 9.0})
    records = read_stats(str(tmp_path))
    assert len(records) == 1 and records[0]["loss"] == 0.5 and "time" in records[0]


def test_numbers_go_to_tensorboard_when_it_is_installed(tmp_path, monkeypatch):
    scalars = []

    class FakeSummaryWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            scalars.append((tag, value, step))

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeSummaryWriter))
    writer = StatsWriter(str(tmp_path), is_main=True)
    writer.write({"mode": "train_iter", "epoch": 1, "iter": 5, "loss": 0.25, "lr": 0.1}, step=5)
    writer.close()
    assert sorted(scalars) == [("train_iter/loss", 0.25, 5), ("train_iter/lr", 0.1, 5)]


def job_log(output_dir) -> str:
    return (output_dir / "log.txt").read_text()


def test_the_log_names_what_runs_and_warns_about_settings_that_waste_a_run(tmp_path, fake_data, monkeypatch):
    import os

    from hiera_video.engine import run
    from tests.engine.fakes import tiny_cfg

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed
    opts = ("TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "2.0",
            "DATA_LOADER.NUM_WORKERS", "8", "TRAIN.MIXED_PRECISION", "bf16")
    run(tiny_cfg(tmp_path, *opts))
    log = job_log(tmp_path)
    assert "hiera_base_16x224 with embed_dim=16, num_heads=1, stages=(1, 1, 1, 1): 0." in log
    assert "M parameters" in log and "bf16 autocast" in log
    assert "SOLVER.WARMUP_EPOCHS 2 >= SOLVER.MAX_EPOCH 1" in log
    assert "DATA_LOADER.NUM_WORKERS 8 lowered to 2" in log
    assert log.count("TensorBoard events are off") == 1 and 'pip install -e ".[tensorboard]"' in log
    run(tiny_cfg(tmp_path, *opts, "SOLVER.MAX_EPOCH", "2"))  # resumes in the same OUTPUT_DIR
    log = job_log(tmp_path)
    assert log.count("TensorBoard events are off") == 1
    run(tiny_cfg(tmp_path, *opts, "SOLVER.MAX_EPOCH", "2"))  # nothing left to train
    assert "Training is done" in job_log(tmp_path) and "epochs 3..2" not in job_log(tmp_path)
