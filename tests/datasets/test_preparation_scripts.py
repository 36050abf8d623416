"""Dataset preparation scripts: Kinetics list from the official CSV, SSv2 frames from WebM."""
import json
import runpy
import shutil
import sys
from pathlib import Path

from hiera_video.datasets.list_files import read_frame_list, read_path_label_list

REPO = Path(__file__).resolve().parents[2]


def run_script(relative_path, arguments, monkeypatch):
    monkeypatch.setattr(sys, "argv", [relative_path, *arguments])
    runpy.run_path(str(REPO / relative_path), run_name="__main__")


def test_kinetics_make_list_lists_present_videos_with_sorted_class_indices(videos, tmp_path, monkeypatch, capsys):
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "zumba,aaa,10,20,train\nabseiling,bbb,0,10,train\nyoga,gone,5,15,train\n")
    (tmp_path / "videos").mkdir()
    shutil.copy(videos["short.mp4"], tmp_path / "videos" / "aaa_000010_000020.mp4")
    shutil.copy(videos["short.mp4"], tmp_path / "videos" / "bbb_000000_000010.webm")
    output = tmp_path / "lists" / "train.csv"
    run_script("datasets/kinetics/make_list.py", ["--annotations", str(tmp_path / "train.csv"),
                                                  "--videos", str(tmp_path / "videos"), "--output", str(output)],
               monkeypatch)
    assert "2 of 3 listed videos found; 1 missing" in capsys.readouterr().out
    entries = read_path_label_list(str(output))
    assert [(e.path, e.label) for e in entries] == [("aaa_000010_000020.mp4", 2), ("bbb_000000_000010.webm", 0)]
    assert json.loads((tmp_path / "lists" / "classids.json").read_text()) == {"abseiling": 0, "yoga": 1, "zumba": 2}


def test_ssv2_extract_frames_writes_jpegs_and_a_frame_list(videos, tmp_path, monkeypatch, capsys):
    (tmp_path / "videos").mkdir()
    shutil.copy(videos["short.mp4"], tmp_path / "videos" / "5.webm")  # the reader goes by content
    (tmp_path / "val.json").write_text(json.dumps([{"id": "5", "template": "x"}, {"id": "6", "template": "x"}]))
    run_script("datasets/ssv2/extract_frames.py", [
        "--videos", str(tmp_path / "videos"), "--annotations", str(tmp_path / "val.json"),
        "--frames", str(tmp_path / "frames"), "--list", str(tmp_path / "val.csv")], monkeypatch)
    assert "1 of 2 videos extracted" in capsys.readouterr().out
    frames = read_frame_list(str(tmp_path / "val.csv"), str(tmp_path / "frames"))
    assert list(frames) == ["5"] and len(frames["5"]) == 10
    assert all(Path(path).is_file() for path in frames["5"])
