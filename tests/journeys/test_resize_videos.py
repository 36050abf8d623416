"""``datasets/kinetics/resize_videos.py`` on a PySlowFast K400 layout, then training on what it wrote."""
import re
import shutil
from pathlib import Path

from hiera_video.datasets.decoding import open_video

from .conftest import QUICK, TINY_HIERA, Command, run_command, run_net_command

RESIZE = "../datasets/kinetics/resize_videos.py"  # run_command runs tools/<tool>


def opt(opts: list[str], key: str) -> str:
    return opts[opts.index(key) + 1]


def resize(list_file: str, videos: str, out: Path):
    return run_command(Command(RESIZE, ("--list", list_file, "--videos", videos, "--out", str(out),
                                        "--short-side", "32", "--keyframe-interval", "8", "--workers", "2")))


def test_resize_rewrites_the_list_keeps_a_bad_video_listed_and_resumes(kinetics_lists, tmp_path):
    broken_lists = Path(opt(kinetics_lists.broken_opts, "DATA.PATH_TO_DATA_DIR"))
    videos = opt(kinetics_lists.opts, "DATA.PATH_PREFIX")
    out = tmp_path / "k400_small"
    job = resize(str(broken_lists / "train.csv"), videos, out)
    assert job.returncode == 1, job.diagnosis()
    assert "3 re-encoded, 0 already done, 1 failed" in job.stdout, job.diagnosis()
    assert re.search(r"failed: .*broken_train_000000_000010\.mp4: ", job.stdout), job.diagnosis()
    assert "Traceback" not in job.stderr, job.diagnosis()

    lines = (out / "train.csv").read_text(encoding="utf-8").splitlines()
    source_lines = (broken_lists / "train.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split()[1] for line in lines] == [line.split()[1] for line in source_lines]
    assert lines[-1] == f"{Path(videos).resolve() / 'archery' / 'broken_train_000000_000010.mp4'} 2"
    with open_video(out / lines[0].split()[0]) as video:
        assert min(video.height, video.width) == 32

    again = resize(str(broken_lists / "train.csv"), videos, out)
    assert "0 re-encoded, 3 already done, 1 failed" in again.stdout, again.diagnosis()


def test_training_reads_the_resized_dataset(kinetics_lists, tmp_path):
    clean_lists = Path(opt(kinetics_lists.opts, "DATA.PATH_TO_DATA_DIR"))
    videos = opt(kinetics_lists.opts, "DATA.PATH_PREFIX")
    out = tmp_path / "k400_small"
    for split in ("train", "val", "test"):
        assert resize(str(clean_lists / f"{split}.csv"), videos, out).returncode == 0
    shutil.copy(clean_lists / "classids.json", out)
    job = run_command(run_net_command(
        "configs/K400/hiera_b.yaml", tmp_path / "run", *QUICK, *TINY_HIERA, "DATA.PATH_TO_DATA_DIR", str(out),
        "DATA.PATH_PREFIX", str(out), "TRAIN.BATCH_SIZE", "4", "TEST.NUM_ENSEMBLE_VIEWS", "1",
        "TEST.NUM_SPATIAL_CROPS", "1", "TEST.BATCH_SIZE", "2"))
    assert job.returncode == 0, job.diagnosis()
    assert (job.summary()["num_videos"], job.summary()["num_failed"]) == (3, 0), job.diagnosis()
