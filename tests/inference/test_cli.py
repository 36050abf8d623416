"""tools/predict.py: the readable table, the JSON file, folders, windows, bad files, labelled videos."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hiera_video.datasets.decoding import open_video
from hiera_video.inference.cli import main, overlay_paths
from tests.inference.conftest import CLASS_NAMES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory, videos):
    """A folder with two good clips, a broken one and a text file that is not a video."""
    folder = tmp_path_factory.mktemp("clips")
    for name in ("clip", "short", "broken"):
        shutil.copy(videos[name], folder / f"{name}.mp4")
    (folder / "README.txt").write_text("not a video")
    return folder


def test_one_clip_prints_a_ranked_table(toolkit_checkpoint, videos, capsys):
    status = main([videos["clip"], "--checkpoint", toolkit_checkpoint, "--top-k", "3", "--device", "cpu"])
    out = capsys.readouterr().out
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[0] == f"{videos['clip']}  (3.00 s, 3x3 views)"
    ranks = [line.split() for line in lines[1:4]]
    assert [int(rank[0]) for rank in ranks] == [1, 2, 3]
    assert sorted(rank[2] for rank in ranks) == sorted(CLASS_NAMES)
    percents = [float(rank[1].rstrip("%")) for rank in ranks]
    assert percents == sorted(percents, reverse=True) and sum(percents) == pytest.approx(100, abs=0.05)
    assert "videos:" not in out  # no summary for a single good video


def test_predict_reads_the_checkpoint_file_once(toolkit_checkpoint, videos, monkeypatch, capsys):
    reads = []
    load = torch.load

    def counting_load(source, *args, **kwargs):
        reads.append(os.fspath(source))
        return load(source, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    assert main([videos["short"], "--checkpoint", toolkit_checkpoint, "--device", "cpu"]) == 0
    capsys.readouterr()
    assert reads == [toolkit_checkpoint]


def test_a_folder_with_a_bad_file_gives_table_json_and_exit_status_1(toolkit_checkpoint, clip_folder, tmp_path,
                                                                     capsys):
    json_path = tmp_path / "out" / "predictions.json"
    status = main([str(clip_folder), "--checkpoint", toolkit_checkpoint, "--top-k", "2", "--json", str(json_path),
                   "--workers", "1"])
    out = capsys.readouterr().out
    assert status == 1
    records = json.loads(json_path.read_text())
    assert [os.path.basename(r["path"]) for r in records] == ["broken.mp4", "clip.mp4", "short.mp4"]
    for record in records:
        assert {"path", "duration", "top_k", "windows", "decoder", "error"} <= set(record)
        assert record["decoder"] == "pyav"
    broken, clip, short = records
    assert broken["error"] and broken["top_k"] == [] and broken["duration"] is None
    assert clip["error"] is None and short["error"] is None and short["duration"] == pytest.approx(1.0)
    assert [set(entry) >= {"label", "score"} for entry in clip["top_k"]] == [True, True]
    assert all(entry["label"] in CLASS_NAMES for entry in clip["top_k"] + short["top_k"])
    assert f"{broken['path']}  FAILED: " in out
    assert "3 videos: 2 predicted, 1 failed" in out
    for entry in clip["top_k"]:
        assert f"{100 * entry['score']:6.2f}%  {entry['label']}" in out


def test_windows_are_listed_with_start_and_end_times(toolkit_checkpoint, videos, tmp_path, capsys):
    json_path = tmp_path / "windows.json"
    status = main([videos["colours"], "--checkpoint", toolkit_checkpoint, "--window", "2.5", "--top-k", "1",
                   "--views", "2x1", "--json", str(json_path)])
    out = capsys.readouterr().out
    assert status == 0
    (record,) = json.loads(json_path.read_text())
    assert record["views"] == "2x1" and record["window"] == 2.5
    assert [(w["start"], w["end"]) for w in record["windows"]] == [(0.0, 2.5), (2.5, 5.0), (5.0, 6.0)]
    assert all(len(w["top_k"]) == 1 for w in record["windows"])
    assert "per 2.5 s window (1x3 views):" in out
    assert "    2.50 -     5.00 s" in out


def test_window_does_not_change_the_whole_video_answer(toolkit_checkpoint, videos, tmp_path):
    """The same clip with and without --window: the same whole-video scores (the config's 3x3 test views)."""
    records = {}
    for name, extra in (("whole", []), ("windowed", ["--window", "1"])):
        json_path = tmp_path / f"{name}.json"
        completed = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "predict.py"), videos["clip"], "--checkpoint", toolkit_checkpoint,
             "--device", "cpu", "--precision", "fp32", "--top-k", "3", "--json", str(json_path), *extra],
            capture_output=True, text=True, cwd=tmp_path, timeout=120,
        )
        assert completed.returncode == 0, completed.stderr
        assert "precision: float32 on cpu" in completed.stderr
        (records[name],) = json.loads(json_path.read_text())
    whole, windowed = records["whole"], records["windowed"]
    assert whole["views"] == windowed["views"] == "3x3" and windowed["window_views"] == "1x3"
    assert len(windowed["windows"]) == 3 and whole["windows"] == []
    assert windowed["top_k"] == whole["top_k"]


def test_the_labelled_video_is_written_beside_the_predictions(toolkit_checkpoint, videos, tmp_path, capsys):
    output = tmp_path / "labelled.mp4"
    json_path = tmp_path / "p.json"
    status = main([videos["large"], "--checkpoint", toolkit_checkpoint, "--output-video", str(output),
                   "--json", str(json_path)])
    capsys.readouterr()
    assert status == 0
    with open_video(output) as labelled, open_video(videos["large"]) as source:
        assert (labelled.num_frames, labelled.width, labelled.height) == (source.num_frames, source.width,
                                                                           source.height)
    assert json.loads(json_path.read_text())[0]["output_video"] == str(output)


def test_several_labelled_videos_go_to_a_folder_with_distinct_names():
    records = [{"path": "a/clip.mp4", "error": None}, {"path": "b/clip.mp4", "error": None},
               {"path": "c/bad.mp4", "error": "cannot open"}, {"path": "d/x.webm", "error": None}]
    assert overlay_paths(records, "out") == ["out/clip_labels.mp4", "out/clip_labels_2.mp4", None,
                                             "out/x_labels.mp4"]
    assert overlay_paths(records[:1], "one.mp4") == ["one.mp4"]


def test_unusable_checkpoints_and_arguments_exit_with_status_2(official_checkpoint, videos, capsys):
    assert main([videos["clip"], "--checkpoint", official_checkpoint]) == 2
    assert "--model" in capsys.readouterr().err
    assert main([videos["clip"], "--checkpoint", "/nonexistent.pyth"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([videos["clip"], videos["short"], "--checkpoint", official_checkpoint, "--output-video", "x.mp4"]) == 2
    assert "give a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([videos["clip"], "--checkpoint", official_checkpoint, "--views", "5"])
    assert exit_info.value.code == 2
    assert "TxS" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([videos["clip"], "--checkpoint", official_checkpoint, "--window-views", "2x3"])
    assert exit_info.value.code == 2
    assert "--window-views needs --window" in capsys.readouterr().err


def test_the_script_runs_from_a_checkout(toolkit_checkpoint, videos, tmp_path):
    json_path = tmp_path / "p.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "predict.py"), videos["short"], "--checkpoint", toolkit_checkpoint,
         "--json", str(json_path), "--top-k", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    )
    assert completed.returncode == 0, completed.stderr
    (record,) = json.loads(json_path.read_text())
    assert record["error"] is None and record["top_k"][0]["label"] in CLASS_NAMES
    assert completed.stdout.startswith(videos["short"])


@pytest.mark.parametrize("option, value, allowed", [
    ("--views", "0x0", "at least one temporal clip is needed"),
    ("--views", "2x2", "spatial crops must be 1 (centre) or 3"),
    ("--window-views", "1x0", "spatial crops must be 1 (centre) or 3"),
    ("--window", "-1", "must be a positive number of seconds, got '-1'"),
    ("--window", "nan", "must be a positive number of seconds, got 'nan'"),
    ("--window", "inf", "must be a positive number of seconds, got 'inf'"),
    ("--batch-size", "0", "must be a whole number of at least 1, got '0'"),
    ("--workers", "-1", "must be a whole number of at least 0, got '-1'"),
    ("--top-k", "0", "must be a whole number of at least 1, got '0'"),
    ("--decode-timeout", "-2", "must be 0 or a positive number of seconds, got '-2'"),
])
def test_bad_numbers_and_views_are_argument_errors_that_say_what_is_allowed(videos, option, value, allowed, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([videos["clip"], "--checkpoint", "unused.pyth", "--window", "1", option, value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("predict.py: error: ") and f"argument {option}: " in error and allowed in error


def test_the_json_file_is_written_before_the_table_is_printed(toolkit_checkpoint, videos, tmp_path, monkeypatch):
    def broken_terminal(text, stream):
        raise BrokenPipeError("the terminal went away")

    monkeypatch.setattr("hiera_video.inference.cli.show", broken_terminal)
    json_path = tmp_path / "p.json"
    with pytest.raises(BrokenPipeError):
        main([videos["short"], "--checkpoint", toolkit_checkpoint, "--json", str(json_path)])
    (record,) = json.loads(json_path.read_text())
    assert record["error"] is None and record["path"] == videos["short"]


def test_a_file_name_that_is_not_utf8_is_printed_escaped_and_kept_in_the_json(toolkit_checkpoint, videos, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    name = b"caf\xe9_\xff.mp4"  # Latin-1 bytes: not valid UTF-8
    shutil.copy(videos["short"], os.path.join(os.fsencode(folder), name))
    json_path = tmp_path / "p.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "predict.py"), str(folder), "--checkpoint", toolkit_checkpoint,
         "--json", str(json_path), "--top-k", "1", "--device", "cpu"],
        capture_output=True, cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    (record,) = json.loads(json_path.read_text())
    assert os.fsencode(record["path"]) == os.path.join(os.fsencode(folder), name) and record["error"] is None
    assert completed.stdout.decode("utf-8").startswith(f"{folder}/caf\\xe9_\\xff.mp4  (1.00 s")
