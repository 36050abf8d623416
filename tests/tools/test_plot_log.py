"""tools/plot_log.py's library function draws a run's stats.jsonl to a PNG."""
import json

import pytest

from hiera_video.utils.plot_log import plot_training_log

pytest.importorskip("matplotlib", reason="plotting needs the [plot] extra (matplotlib)")


def test_curves_are_drawn_from_the_stats_of_a_run(tmp_path):
    records = [{"mode": "train_iter", "epoch": e, "iter": i, "loss": 2.0 / (e + i), "lr": 0.1 * e}
               for e in (1, 2) for i in (1, 2)]
    records += [{"mode": "train_epoch", "epoch": e, "loss": 1.0 / e, "top1": 40.0 * e} for e in (1, 2)]
    records += [{"mode": "val", "epoch": 2, "top1": 70.0, "top5": 95.0}]
    (tmp_path / "stats.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    png = plot_training_log(str(tmp_path))
    assert png == tmp_path / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_a_folder_without_stats_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="stats.jsonl"):
        plot_training_log(str(tmp_path))
