"""tools/plot_log.py draws the panels a run has data for, with validation curves when it validated."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hiera_video.utils.plot_log import panels_with_data, plot_training_log

pytest.importorskip("matplotlib", reason="plotting needs the [plot] extra (matplotlib)")
from PIL import Image  # noqa: E402  (matplotlib brings Pillow)

REPO = Path(__file__).resolve().parents[2]
MAE_RUN = ([{"mode": "train_iter", "epoch": e, "iter": i, "loss": 2.0 / (e + i), "lr": 0.1 * e}
            for e in (1, 2) for i in (1, 2)]
           + [{"mode": "train_epoch", "epoch": e, "loss": 1.0 / e} for e in (1, 2)])
CLASSIFICATION_RUN = (MAE_RUN + [{"mode": "train_epoch", "epoch": e, "loss": 1.0 / e, "top1": 40.0 * e} for e in (1, 2)]
                      + [{"mode": "val", "epoch": e, "top1": 30.0 * e, "top5": 45.0 * e} for e in (1, 2)])


def write_stats(folder: Path, records: list[dict]) -> str:
    (folder / "stats.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(folder)


def curve_labels(panels: dict, title: str) -> list[str]:
    return [label for label, *_ in panels[title]]


def test_an_mae_run_gets_loss_and_lr_panels_and_no_empty_accuracy_panel(tmp_path):
    png = plot_training_log(write_stats(tmp_path, MAE_RUN))
    assert png == tmp_path / "curves.png"
    assert Image.open(png).text["Description"] == "panels: loss; learning rate"
    assert Image.open(png).size == (1000, 400)  # two panels of 5 x 4 inches at 100 dpi


def test_validation_records_add_val_curves_to_the_accuracy_panel():
    panels = panels_with_data(CLASSIFICATION_RUN)
    assert list(panels) == ["loss", "learning rate", "accuracy (%)"]
    assert curve_labels(panels, "accuracy (%)") == ["train top-1", "val top-1", "val top-5"]
    _, epochs, top1, _ = panels["accuracy (%)"][1]
    assert (epochs, top1) == ([1, 2], [30.0, 60.0])
    # Iteration records sit between epochs: iteration 1 of 2 of epoch 2 is at 1.5.
    _, xs, _, _ = panels["loss"][0]
    assert xs == [0.5, 1.0, 1.5, 2.0]


def test_a_run_without_validation_gets_no_val_curves():
    panels = panels_with_data(CLASSIFICATION_RUN[:-2])
    assert curve_labels(panels, "accuracy (%)") == ["train top-1"]


def run_plot_log(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "plot_log.py"), *args], capture_output=True,
                          text=True, timeout=120)


def test_the_command_line_prints_the_png_it_wrote(tmp_path):
    result = run_plot_log(write_stats(tmp_path, CLASSIFICATION_RUN), "--out", str(tmp_path / "run.png"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "run.png")
    assert Image.open(tmp_path / "run.png").text["Description"] == "panels: loss; learning rate; accuracy (%)"


def test_a_folder_without_stats_is_one_error_line(tmp_path):
    result = run_plot_log(str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: No stats.jsonl in {tmp_path}: is this the OUTPUT_DIR of a training run?"]
