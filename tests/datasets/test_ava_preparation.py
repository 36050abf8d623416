"""Trimming movies and extracting 30 fps frames for AVA, checked with frames that carry their index."""
from hiera_video.datasets.ava import ExtractedFrames, TrimmedVideos, write_frame_list
from hiera_video.datasets.ava_preparation import extract_frames, trim_video
from hiera_video.datasets.synthetic import numbered_frames, read_frame_number, write_video


def test_trim_then_extract_gives_the_same_frames_as_reading_the_trimmed_video(tmp_path):
    # A 30 fps "movie" whose second 2 plays the part of second 900.
    write_video(tmp_path / "movie.mp4", numbered_frames(200, 48, 64), fps=30, options={"crf": "10"})
    trimmed = tmp_path / "videos" / "movieA.mp4"
    trimmed.parent.mkdir()
    assert trim_video(str(tmp_path / "movie.mp4"), str(trimmed), start=2.0, duration=3.0, crf=10) == 90
    assert extract_frames(str(trimmed), str(tmp_path / "frames" / "movieA"), "movieA") == 90
    assert (tmp_path / "frames" / "movieA" / "movieA_000001.jpg").exists()
    write_frame_list(str(tmp_path / "frames"), ["movieA"], str(tmp_path / "list.csv"))

    grid = [0, 1, 30, 59, 89, 120]  # the last one is past the end: clamped
    from_video = [read_frame_number(f) for f in TrimmedVideos(str(tmp_path / "videos")).read("movieA", grid)]
    from_frames = [read_frame_number(f) for f in ExtractedFrames(str(tmp_path / "list.csv"), str(tmp_path / "frames"))
                   .read("movieA", grid)]
    assert from_video == from_frames == [60, 61, 90, 119, 149, 149]


def test_trim_resamples_other_frame_rates_by_time(tmp_path):
    write_video(tmp_path / "movie.mp4", numbered_frames(60, 48, 64), fps=15, options={"crf": "10"})
    assert trim_video(str(tmp_path / "movie.mp4"), str(tmp_path / "trimmed.mp4"), start=1.0, duration=1.0) == 30
    frames = TrimmedVideos(str(tmp_path)).read("trimmed", list(range(6)))
    assert [read_frame_number(f) for f in frames] == [15, 15, 16, 16, 17, 17]


def load_prepare_script():
    """datasets/ava/prepare_ava.py as a module (it is a script, not part of the package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "datasets" / "ava" / "prepare_ava.py"
    spec = importlib.util.spec_from_file_location("prepare_ava", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_script_lists_frames_and_reports_broken_movies(tmp_path, capsys):
    prepare = load_prepare_script()
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    (annotations / "ava_train_v2.2.csv").write_text("vidA,0902,0.1,0.1,0.5,0.5,12,0\nvidC,0902,0.1,0.1,0.5,0.5,12,0\n")
    (annotations / "ava_val_v2.2.csv").write_text("vidA,0903,0.1,0.1,0.5,0.5,12,0\n")
    for index in range(3):
        (tmp_path / "frames" / "vidA").mkdir(parents=True, exist_ok=True)
        (tmp_path / "frames" / "vidA" / f"vidA_{index + 1:06d}.jpg").write_bytes(b"jpeg")
    assert prepare.main(["lists", "--frames", str(tmp_path / "frames"), "--annotations", str(annotations),
                         "--out", str(tmp_path / "lists")]) == 0
    assert "train: 1 videos, 3 frames; 1 without frames: vidC" in capsys.readouterr().out
    lines = (tmp_path / "lists" / "train.csv").read_text().splitlines()
    assert lines[0] == "original_vido_id video_id frame_id path labels"
    assert lines[1:] == [f'vidA 0 {i} vidA/vidA_{i + 1:06d}.jpg ""' for i in range(3)]

    (tmp_path / "movies").mkdir()
    (tmp_path / "movies" / "broken.mp4").write_bytes(b"not a video")
    assert prepare.main(["trim", "--movies", str(tmp_path / "movies"), "--out", str(tmp_path / "videos"),
                         "--workers", "1"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert list((tmp_path / "videos").iterdir()) == []  # no partial file left behind
