"""Probing a dataset: every listed video ends in the manifest or in the bad list, hangs included."""
import csv
import importlib.util
import os
from pathlib import Path

import yaml

from hiera_video.datasets import build_dataset
from hiera_video.datasets.probe import check_dataset, probe_dataset
from tests.datasets.conftest import BROKEN

REPO = Path(__file__).resolve().parents[2]


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_list(directory, names):
    lines = [f"{name} {i % 3}\n" for i, name in enumerate(names)]
    (directory / "val.csv").write_text("".join(lines))


def test_probe_sorts_every_video_into_manifest_or_bad_list(small_cfg, videos, tmp_path):
    good = ["h264.mp4", "vp9.webm", "vfr.mp4"]
    write_list(tmp_path, good + list(BROKEN) + ["stalled_fifo.mp4"])
    small_cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    small_cfg.DATA.PATH_PREFIX = os.path.dirname(videos["h264.mp4"])
    small_cfg.DATA.DECODE_TIMEOUT = 2.0
    dataset = build_dataset(small_cfg, "val")
    manifest, bad = probe_dataset(dataset, workers=3, show_progress=False)
    assert [os.path.basename(row["path"]) for row in manifest] == good
    assert manifest[0]["num_frames"] == 90 and manifest[0]["codec"] == "h264" and manifest[0]["width"] == 64
    assert manifest[1]["codec"] == "vp9" and not manifest[2]["constant_frame_rate"]
    assert [os.path.basename(row["path"]) for row in bad] == list(BROKEN) + ["stalled_fifo.mp4"]
    assert bad[-1]["error"].startswith("timed out") and bad[-1]["source"] == f"{tmp_path}/val.csv:10"


def test_check_dataset_writes_manifest_and_bad_list(small_cfg, videos, tmp_path):
    write_list(tmp_path, ["h264.mp4", "corrupt.mp4"])
    small_cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    small_cfg.DATA.PATH_PREFIX = os.path.dirname(videos["h264.mp4"])
    summary = check_dataset(small_cfg, "val", str(tmp_path / "out"), workers=2, show_progress=False)
    assert (summary["listed"], summary["good"], summary["bad"]) == (2, 1, 1)
    row = read_csv(summary["manifest"])[0]
    assert row["duration"] == "3.0" and row["fps"] == "30.0"  # written as people read them
    assert read_csv(summary["bad_list"])[0]["path"].endswith("corrupt.mp4")


def test_the_tool_reads_a_config_file_and_overrides(videos, tmp_path, capsys):
    write_list(tmp_path, ["h264.mp4", "empty.mp4"])
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump({"DATA": {"PATH_TO_DATA_DIR": str(tmp_path), "DECODE_TIMEOUT": 0.0}}))
    spec = importlib.util.spec_from_file_location("check_dataset_tool", REPO / "tools" / "check_dataset.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    status = tool.main(["--cfg", str(cfg_file), "--split", "val", "--output", str(tmp_path / "out"),
                        "DATA.PATH_PREFIX", os.path.dirname(videos["h264.mp4"])])
    assert status == 1
    assert "val: 2 listed, 1 good, 1 bad" in capsys.readouterr().out
    assert len(read_csv(tmp_path / "out" / "manifest_val.csv")) == 1
