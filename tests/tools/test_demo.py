"""The built-in demo (python tools/run_net.py --demo) learns the synthetic motion classes end to end, and
says where its pictures are."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hiera_video.engine.checkpoint import find_latest_checkpoint
from hiera_video.engine.demo import print_mae_progress, run_demo, write_demo_pictures
from hiera_video.engine.logging import read_stats
from hiera_video.utils import plot_log
from hiera_video.utils.motion_dataset import CLASS_NAMES


def write_stats(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stats.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))


def test_the_demo_prints_the_mae_loss_of_its_first_and_last_epoch(tmp_path, capsys):
    write_stats(tmp_path, [{"mode": "train_epoch", "epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
                + [{"mode": "train_iter", "epoch": 3, "iter": 1, "loss": 9.0}])
    print_mae_progress(str(tmp_path))
    assert capsys.readouterr().out == "MAE loss: 1.000 at epoch 1, 0.333 at epoch 3\n"


def test_the_demo_draws_its_pictures_and_prints_where_they_are(after_the_demo, monkeypatch, capsys):
    pytest.importorskip("matplotlib", reason="the pictures need the [plot] extra (matplotlib)")
    monkeypatch.chdir(after_the_demo)
    mae, finetune = after_the_demo / "demo_output" / "mae", after_the_demo / "demo_output" / "finetune"
    write_stats(mae, [{"mode": "train_epoch", "epoch": 1, "loss": 1.0}])
    write_stats(finetune, [{"mode": "train_epoch", "epoch": 1, "loss": 2.0, "top1": 50.0}])
    pictures = write_demo_pictures("demo_output/mae", "demo_output/finetune")
    assert [after_the_demo / path for path in pictures] == [
        mae / "reconstruction.png", mae / "curves.png", finetune / "curves.png"]
    assert all(path.stat().st_size > 10_000 for path in pictures)
    assert capsys.readouterr().out.splitlines()[-1] == "Pictures: " + ", ".join(str(path) for path in pictures)


def test_without_matplotlib_the_demo_says_how_to_get_the_pictures(monkeypatch, capsys):
    def missing():
        raise plot_log.MissingPlotLibraryError("no matplotlib")

    monkeypatch.setattr(plot_log, "import_pyplot", missing)
    assert write_demo_pictures("mae", "finetune") == []
    assert capsys.readouterr().out == (
        'No pictures: they need matplotlib (pip install -e ".[plot]" in a checkout, or pip install matplotlib).\n')


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HIERA_VIDEO_SLOW_TESTS") != "1",
                    reason="the full demo takes minutes on CPU; set HIERA_VIDEO_SLOW_TESTS=1 to run it")
def test_demo_pretrains_finetunes_and_tests_well_above_chance(tmp_path):
    metrics = run_demo(["OUTPUT_DIR", str(tmp_path)]).test.metrics
    chance = 100.0 / len(CLASS_NAMES)
    assert metrics["num_videos"] == metrics["num_evaluated"] == 6 * len(CLASS_NAMES)
    assert metrics["top1"] > 5 * chance
    assert (tmp_path / "mae" / "checkpoints").is_dir() and (tmp_path / "finetune" / "test" / "metrics.json").is_file()
    mae_losses = [r["loss"] for r in read_stats(str(tmp_path / "mae")) if r["mode"] == "train_epoch"]
    assert mae_losses[-1] < 0.8 * mae_losses[0]  # MAE pretraining learns something
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "mae" / "reconstruction.png").is_file() and (tmp_path / "finetune" / "curves.png").is_file()
    # Frozen features of both checkpoints, probed through the tools: the MAE's already tell the motions apart.
    for stage, method, better_than in (("mae", "linear", 3 * chance), ("mae", "knn", 2 * chance),
                                       ("finetune", "knn", 5 * chance)):
        assert probe_top1(tmp_path, stage, method) > better_than, (stage, method)


TOOLS = Path(__file__).resolve().parents[2] / "tools"


def probe_top1(demo_dir: Path, stage: str, method: str) -> float:
    """tools/extract_features.py on the demo's train and test splits with the stage's last checkpoint, then
    tools/probe.py; its top-1."""
    checkpoint = str(find_latest_checkpoint(str(demo_dir / stage)))
    features = {}
    for split in ("train", "test"):
        features[split] = demo_dir / f"{stage}_{split}.npz"
        if not features[split].is_file():
            subprocess.run([sys.executable, str(TOOLS / "extract_features.py"), "--checkpoint", checkpoint,
                            "--split", split, "--output", str(features[split]), "--workers", "0"], check=True)
    result = demo_dir / f"{stage}_{method}.json"
    subprocess.run([sys.executable, str(TOOLS / "probe.py"), "--train", str(features["train"]), "--test",
                    str(features["test"]), "--method", method, "--json", str(result)], check=True)
    return json.loads(result.read_text())["top1"]
