"""Re-encoding for training: smaller frames, frequent keyframes, the same pictures and frame times."""
import os

import pytest

from hiera_video.datasets.decoding import VideoDecodeError, open_video
from hiera_video.datasets.reencode import even_size, reencode_video, reencode_videos
from hiera_video.datasets.synthetic import numbered_frames, read_frame_number, write_video

from .conftest import HEIGHT, NUM_FRAMES, WIDTH


def keyframe_count(path) -> int:
    with open_video(path) as video:
        return len(video._keyframe_pts)


@pytest.mark.parametrize("size, short_side, expected", [
    ((360, 640), 320, (320, 568)), ((640, 360), 320, (568, 320)), ((240, 320), 320, (240, 320)),
    ((241, 321), None, (240, 320)), ((720, 1280), 100, (100, 176)),
])
def test_output_size_keeps_the_aspect_and_is_even(size, short_side, expected):
    assert even_size(*size, short_side) == expected


def test_frames_are_the_source_frames_smaller_with_a_keyframe_every_interval(videos, tmp_path):
    target = reencode_video(videos["h264.mp4"], tmp_path / "out.mp4", short_side=32, keyframe_interval=10)
    with open_video(target) as small, open_video(videos["h264.mp4"]) as source:
        assert (small.num_frames, small.fps) == (source.num_frames, source.fps)
        assert (small.height, small.width) == (32, 42)
        assert small.frame_times == pytest.approx(source.frame_times, abs=1e-3)
        indices = [0, 13, 45, NUM_FRAMES - 1]
        difference = small.get_frames(indices).float() - source.get_frames(indices, short_side=32).float()
        assert difference.abs().mean() < 8
    assert keyframe_count(target) == NUM_FRAMES // 10


def test_frame_numbers_survive_at_full_size(videos, tmp_path):
    target = reencode_video(videos["h264.mp4"], tmp_path / "out.mp4", short_side=None)
    indices = [0, 13, 45, NUM_FRAMES - 1]
    with open_video(target) as video:
        assert [read_frame_number(frame) for frame in video.get_frames(indices)] == indices


def test_variable_frame_rate_and_rotation_survive(videos, tmp_path):
    vfr = reencode_video(videos["vfr.mp4"], tmp_path / "vfr.mp4", short_side=None)
    with open_video(vfr) as out, open_video(videos["vfr.mp4"]) as source:
        assert not out.is_constant_frame_rate
        assert out.frame_times == pytest.approx(source.frame_times, abs=1e-3)
    rotated = reencode_video(videos["rotated.mp4"], tmp_path / "rotated.mp4", short_side=None)
    with open_video(rotated) as out, open_video(videos["rotated.mp4"]) as source:
        assert (out.height, out.width) == (WIDTH, HEIGHT)  # upright pixels, no rotation tag needed
        assert (out.get_frames([3]).float() - source.get_frames([3]).float()).abs().mean() < 6


def test_an_undecodable_source_names_the_file_and_leaves_nothing_behind(videos, tmp_path):
    with pytest.raises(VideoDecodeError) as caught:
        reencode_video(videos["corrupt.mp4"], tmp_path / "out.mp4")
    assert caught.value.path == videos["corrupt.mp4"]
    assert os.listdir(tmp_path) == []


def test_a_rerun_keeps_finished_videos_and_lists_failures(videos, tmp_path):
    pairs = [(videos["h264.mp4"], str(tmp_path / "a.mp4")), (videos["corrupt.mp4"], str(tmp_path / "b.mp4"))]
    first = reencode_videos(pairs, progress=False, short_side=32)
    assert (first.written, first.kept, list(first.failed)) == (1, 0, [videos["corrupt.mp4"]])
    modified = os.path.getmtime(tmp_path / "a.mp4")
    second = reencode_videos(pairs, workers=2, progress=False, short_side=32)
    assert (second.written, second.kept, list(second.failed)) == (0, 1, [videos["corrupt.mp4"]])
    assert os.path.getmtime(tmp_path / "a.mp4") == modified


def test_a_large_file_is_scaled_to_the_default_short_side(tmp_path):
    source = write_video(tmp_path / "hd.mp4", numbered_frames(4, 360, 480))
    with open_video(reencode_video(source, tmp_path / "out.mp4")) as out:
        assert (out.height, out.width) == (320, 426)
