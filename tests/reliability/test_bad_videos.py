"""Bad videos: a Kinetics-format dataset mixing good videos with every kind of broken file trains to the
end, and testing reports each failure with its reason; no file hangs the job past DATA.DECODE_TIMEOUT."""
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hiera_video.datasets.synthetic import numbered_frames, write_audio_only, write_video
from tests.engine.fakes import TINY_OPTS

REPO = Path(__file__).resolve().parents[2]
GOOD = [f"good_{i}.mp4" for i in range(8)]
# name -> whether it must decode (a WebM named .mp4, one frame and 4K are unusual, not broken)
ODD_BUT_FINE = ["webm_named.mp4", "one_frame.mp4", "huge_4k.mp4"]
BROKEN = ["zero_bytes.mp4", "truncated.mp4", "random_bytes.mp4", "text_named.mp4", "audio_only.mp4", "fifo.mp4",
          "missing.mp4"]
DECODE_TIMEOUT = 4.0


def make_videos(folder: Path) -> None:
    """Good videos (motion of numbered frames), unusual-but-valid ones and broken ones, in ``folder``."""
    frames = numbered_frames(45, 48, 64)
    for i, name in enumerate(GOOD):
        write_video(folder / name, frames[i:] if i % 2 else frames.flip(0))
    write_video(folder / "clip.webm", frames[:20], codec="libvpx-vp9")
    (folder / "clip.webm").rename(folder / "webm_named.mp4")
    write_video(folder / "one_frame.mp4", frames[:1])
    write_video(folder / "huge_4k.mp4", numbered_frames(2, 2160, 3840))
    (folder / "zero_bytes.mp4").touch()
    data = (folder / GOOD[0]).read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "random_bytes.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    (folder / "text_named.mp4").write_text("path,label\nthis is a CSV, not a video\n", encoding="utf-8")
    write_audio_only(folder / "audio_only.mp4")
    os.mkfifo(folder / "fifo.mp4")  # no writer ever opens it: opening it for reading blocks for ever


@pytest.fixture(scope="module")
def messy_dataset(tmp_path_factory) -> Path:
    """A dataset folder with train.csv and val.csv listing every good, odd and broken video (label = i % 2)."""
    folder = tmp_path_factory.mktemp("messy")
    make_videos(folder)
    names = GOOD + ODD_BUT_FINE + BROKEN
    rows = "".join(f"{name} {i % 2}\n" for i, name in enumerate(names))
    (folder / "train.csv").write_text(rows, encoding="utf-8")
    (folder / "val.csv").write_text(rows, encoding="utf-8")
    return folder


def test_training_finishes_and_testing_reports_every_failure(messy_dataset, tmp_path):
    output_dir = tmp_path / "job"
    opts = [*TINY_OPTS, "MODEL.NUM_CLASSES", "2", "DATA.PATH_TO_DATA_DIR", str(messy_dataset),
            "DATA.PATH_PREFIX", str(messy_dataset), "DATA.TRAIN_JITTER_SCALES", "[64, 72]",
            "DATA.DECODE_TIMEOUT", str(DECODE_TIMEOUT), "TRAIN.MAX_FAILED_FRACTION", "0.5",
            "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "6", "OUTPUT_DIR", str(output_dir)]
    config = tmp_path / "job.yaml"
    config.write_text("{}\n", encoding="utf-8")  # the defaults; the job is set by overrides
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(REPO / "tools" / "run_net.py"), "--cfg", str(config), *opts],
                            env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-4000:]

    metrics = json.loads((output_dir / "test" / "metrics.json").read_text())
    total = len(GOOD) + len(ODD_BUT_FINE) + len(BROKEN)
    failed = {Path(f["path"]).name: f["error"] for f in metrics["failed"]}
    assert sorted(failed) == sorted(BROKEN)
    assert metrics["num_videos"] == total and metrics["num_failed"] == len(BROKEN)
    assert metrics["num_evaluated"] + metrics["num_failed"] == total
    assert "0 bytes" in failed["zero_bytes.mp4"] and "not found" in failed["missing.mp4"]
    assert "DECODE_TIMEOUT" in failed["fifo.mp4"]
    assert "video stream" in failed["audio_only.mp4"]
    assert all(reason.strip() for reason in failed.values())
    # Training saw the broken files too: each is reported (once) with its reason, and the job went on.
    for name in BROKEN:
        assert name in result.stderr
    assert (output_dir / "checkpoints" / "checkpoint_epoch_00001.pyth").is_file()
    # The FIFO can stall at most once in training and once in testing, each bounded by the timeout.
    assert elapsed < 120, f"job took {elapsed:.0f} s"


def test_check_dataset_lists_exactly_the_broken_files_with_their_list_line(messy_dataset, tmp_path):
    from hiera_video.config import load_config
    from hiera_video.datasets.probe import check_dataset

    cfg = load_config(None, [*TINY_OPTS, "MODEL.NUM_CLASSES", "2", "DATA.PATH_TO_DATA_DIR", str(messy_dataset),
                             "DATA.PATH_PREFIX", str(messy_dataset), "DATA.DECODE_TIMEOUT", str(DECODE_TIMEOUT)])
    summary = check_dataset(cfg, "val", str(tmp_path), workers=2, show_progress=False)
    assert (summary["listed"], summary["good"], summary["bad"]) == (18, 11, 7)
    with open(summary["bad_list"], encoding="utf-8") as handle:
        bad = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    assert sorted(bad) == sorted(BROKEN)
    names = GOOD + ODD_BUT_FINE + BROKEN
    for name, row in bad.items():
        assert row["source"].endswith(f"val.csv:{names.index(name) + 1}") and row["error"]
