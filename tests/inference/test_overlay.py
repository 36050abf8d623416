"""The labelled video: same size, frame count and rate; the labels in force are drawn, nothing else changes."""
import numpy as np
import pytest

from hiera_video.datasets.decoding import VideoDecodeError, open_video
from hiera_video.inference.overlay import draw_labels, label_lines, labels_at, text_box, write_overlay_video

RECORD = {
    "error": None,
    "top_k": [{"label": "juggling", "index": 0, "score": 0.5}],
    "windows": [
        {"start": 0.0, "end": 1.0, "top_k": [{"label": "first part", "index": 0, "score": 0.9},
                                             {"label": "other", "index": 1, "score": 0.1}]},
        {"start": 1.0, "end": 2.0, "top_k": [{"label": "WIDE SECOND PART", "index": 2, "score": 0.8},
                                             {"label": "other", "index": 1, "score": 0.2}]},
    ],
}


def _decode_all(path):
    with open_video(path) as video:
        return video.get_frames(range(video.num_frames)).numpy().astype(np.int16), video.fps


def test_labels_are_drawn_in_their_box_and_nowhere_else():
    frame = np.full((120, 160, 3), 128, np.uint8)
    lines = label_lines(RECORD["windows"][0]["top_k"], 2)
    assert lines == ["90.0% first part", "10.0% other"]
    drawn = draw_labels(frame, lines)
    left, top, right, bottom = text_box(lines, 120)
    assert drawn.shape == frame.shape and 0 < right < 160 and 0 < bottom < 120
    outside = np.ones(frame.shape[:2], bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(drawn[outside], frame[outside])
    box = drawn[top:bottom, left:right]
    assert (box > 200).any() and (box < 60).mean() > 0.5  # white text on a darkened box


def test_the_window_at_a_time_gives_the_lines():
    assert labels_at(RECORD, 0.5, 1) == ["90.0% first part"]
    assert labels_at(RECORD, 1.5, 2) == ["80.0% WIDE SECOND PART", "20.0% other"]
    assert labels_at(RECORD, 2.0, 1) == ["80.0% WIDE SECOND PART"]  # the last frame ends the last window
    assert labels_at({**RECORD, "windows": []}, 1.5, 1) == ["50.0% juggling"]


def test_the_labelled_video_keeps_size_frames_and_rate_and_shows_each_windows_labels(videos, tmp_path):
    output = tmp_path / "labelled.mp4"
    written = write_overlay_video(videos["large"], output, RECORD, top_k=2)
    assert written == {"path": str(output), "frames": 60, "width": 160, "height": 120, "fps": 30.0}
    source, source_fps = _decode_all(videos["large"])
    labelled, labelled_fps = _decode_all(output)
    assert labelled.shape == source.shape and labelled_fps == source_fps
    for index in (0, 15, 29, 30, 45, 59):
        seconds = index / 30
        expected = draw_labels(source[index].astype(np.uint8), labels_at(RECORD, seconds, 2)).astype(np.int16)
        other_window = RECORD["windows"][1 - int(seconds >= 1.0)]["top_k"]
        wrong = draw_labels(source[index].astype(np.uint8), label_lines(other_window, 2)).astype(np.int16)
        left, top, right, bottom = text_box(labels_at(RECORD, seconds, 2), 120)
        box = (slice(top, bottom), slice(left, right))
        # In the box: the drawn labels (up to the codec), clearly not the source nor the other window's text.
        error = np.abs(labelled[index][box] - expected[box]).mean()
        assert error < 6
        assert np.abs(labelled[index][box] - source[index][box]).mean() > 4 * error
        assert np.abs(labelled[index][box] - wrong[box]).mean() > 1.5 * error
        # Elsewhere: the source frame, up to the codec.
        outside = np.ones(source.shape[1:3], bool)
        outside[box] = False
        assert np.abs(labelled[index][outside] - source[index][outside]).mean() < 3


def test_nothing_to_draw_is_an_error(videos, tmp_path):
    with pytest.raises(ValueError, match="no prediction"):
        write_overlay_video(videos["clip"], tmp_path / "x.mp4", {"error": "cannot open", "top_k": []})
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        write_overlay_video(videos["broken"], tmp_path / "y.mp4", RECORD)
    assert not (tmp_path / "y.mp4").exists()
