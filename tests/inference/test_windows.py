"""Views, time windows, frame sampling per window and the folder expansion."""

import numpy as np
import pytest

from hiera_video.datasets.test_views import ClipSampling
from hiera_video.inference.sources import ArrayVideo, find_videos
from hiera_video.inference.windows import ViewSpec, time_windows, window_indices


def test_views_parse_temporal_by_spatial():
    assert ViewSpec.parse("5x3") == ViewSpec(5, 3)
    assert ViewSpec.parse(" 1X1 ").count == 1
    assert str(ViewSpec(4, 3)) == "4x3"


@pytest.mark.parametrize("text", ["5", "5x2", "0x3", "ax3", "5x3x1"])
def test_views_reject_what_is_not_txs_with_1_or_3_crops(text):
    with pytest.raises(ValueError, match="5x3|crops|clip"):
        ViewSpec.parse(text)


def test_time_windows_cover_the_video_and_the_last_one_ends_with_it():
    assert time_windows(10.0, 4.0) == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)]
    assert time_windows(6.0, 2.0) == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert time_windows(1.5, 4.0) == [(0.0, 1.5)]
    with pytest.raises(ValueError, match="positive"):
        time_windows(5.0, -1.0)


def test_window_clips_stay_inside_their_window():
    video = ArrayVideo(np.zeros((300, 8, 8, 3), np.uint8), fps=30)  # 10 s
    sampling = ClipSampling(num_frames=8, sampling_rate=2, target_fps=30)  # a clip spans 16 frames
    for start, end in time_windows(video.duration, 2.0):
        indices = window_indices(video, sampling, 3, start, end)
        assert indices.shape == (3, 8)
        assert indices.min() >= round(start * 30) and indices.max() < round(end * 30)
        assert indices[0, 0] == round(start * 30)  # first clip at the window's start, last at its end
        assert indices[-1, -1] == round(end * 30) - 1


def test_a_clip_longer_than_its_window_is_centred_on_it():
    video = ArrayVideo(np.zeros((300, 8, 8, 3), np.uint8), fps=30)
    sampling = ClipSampling(num_frames=16, sampling_rate=4, target_fps=30)  # spans 64 frames > 1 s window
    indices = window_indices(video, sampling, 1, 5.0, 6.0)[0]
    centre = (indices[0] + indices[-1]) / 2
    assert abs(float(centre) - 164.5) <= 1.0  # window frames 150..179


def test_segment_sampling_for_ssv2_takes_window_segment_middles():
    video = ArrayVideo(np.zeros((90, 8, 8, 3), np.uint8), fps=30)
    sampling = ClipSampling(num_frames=3, sampling_rate=1, target_fps=30, segments=True)
    indices = window_indices(video, sampling, 1, 1.0, 2.0)[0]
    assert indices.tolist() == sorted(indices.tolist()) and 30 <= indices.min() and indices.max() < 60


def test_folders_expand_to_their_videos_files_stay(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.mp4", "a.webm", "notes.txt", "sub/c.MKV"):
        (tmp_path / name).write_bytes(b"x")
    found = find_videos([tmp_path, "missing.mp4"])
    assert found == [str(tmp_path / "a.webm"), str(tmp_path / "b.mp4"), str(tmp_path / "sub" / "c.MKV"),
                     "missing.mp4"]
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="no video files"):
        find_videos([tmp_path / "none"])


def test_array_video_checks_its_frames():
    with pytest.raises(ValueError, match=r"uint8 \[T, H, W, 3\]"):
        ArrayVideo(np.zeros((4, 8, 8, 3), np.float32), fps=30)
    with pytest.raises(ValueError, match="fps"):
        ArrayVideo(np.zeros((4, 8, 8, 3), np.uint8), fps=0)
