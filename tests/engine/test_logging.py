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
