"""Decoding: the same frames from every backend, messy files handled, broken files named, hangs bounded."""
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch

from hiera_video.datasets import decoding
from hiera_video.datasets.decoding import (
    DecodeServer,
    VideoDecodeError,
    backend_problem,
    open_video,
    probe_video,
    scaled_size,
)
from hiera_video.datasets.synthetic import numbered_frames, read_frame_number, write_video
from tests.datasets.conftest import BROKEN, HEIGHT, NUM_FRAMES, WIDTH


def frame_numbers(frames):
    return [read_frame_number(frame) for frame in frames]


def test_numbered_frames_survive_h264(tmp_path):
    path = write_video(tmp_path / "v.mp4", numbered_frames(20))
    with open_video(path) as video:
        assert frame_numbers(video.get_frames(range(20))) == list(range(20))


def test_pyav_reports_metadata_and_returns_requested_frames(videos):
    with open_video(videos["h264.mp4"]) as video:
        assert (video.num_frames, video.fps, video.duration) == (NUM_FRAMES, 30.0, pytest.approx(3.0))
        assert video.is_constant_frame_rate and video.codec == "h264"
        frames = video.get_frames([5, 80, 3, 3, 40])
    assert frames.shape == (5, HEIGHT, WIDTH, 3) and frames.dtype == torch.uint8
    assert frame_numbers(frames) == [5, 80, 3, 3, 40]


def test_frames_far_apart_are_found_after_several_seeks(videos):
    wanted = [0, 1, 2, 50, 51, 77, 89, 15]
    with open_video(videos["small_gop.mp4"]) as video:
        assert len(video._seek_groups(sorted(set(wanted)))) > 1
        assert frame_numbers(video.get_frames(wanted)) == wanted


def test_a_strided_clip_decodes_straight_through_keyframes_it_would_gain_little_by_seeking_to(videos):
    with open_video(videos["small_gop.mp4"]) as video:  # a keyframe every 10 frames
        assert video._seek_groups(list(range(0, 40, 4))) == [list(range(0, 40, 4))]
        assert video._seek_groups([0, 4, 60, 64]) == [[0, 4], [60, 64]]
        assert frame_numbers(video.get_frames(list(range(0, 40, 4)))) == list(range(0, 40, 4))


@pytest.mark.parametrize("backend", ["decord", "torchcodec"])
def test_backends_return_the_same_frames_on_constant_rate_h264(videos, backend):
    if backend_problem(backend):
        pytest.skip(backend_problem(backend))
    indices = [0, 7, 8, 44, 45, 89, 12]
    with open_video(videos["h264.mp4"]) as reference, open_video(videos["h264.mp4"], backend) as other:
        assert (other.num_frames, other.fps) == (reference.num_frames, reference.fps)
        expected, got = reference.get_frames(indices), other.get_frames(indices)
    assert frame_numbers(got) == indices
    assert (expected.int() - got.int()).abs().max() <= 1


@pytest.mark.parametrize("name, count, size", [
    ("vp9.webm", 60, (HEIGHT, WIDTH)),
    ("av1.mkv", 30, (HEIGHT, WIDTH)),
    ("yuv444_odd.mp4", 30, (HEIGHT - 1, WIDTH - 1)),
    ("10bit.mp4", 30, (HEIGHT, WIDTH)),
    ("raw.h264", 30, (HEIGHT, WIDTH)),
])
def test_other_codecs_formats_and_sizes_decode_correctly(videos, name, count, size):
    with open_video(videos[name]) as video:
        assert video.num_frames == count
        assert video.fps == pytest.approx(30.0)
        assert video.duration == pytest.approx(count / 30.0, abs=0.002)
        assert video.is_constant_frame_rate
        frames = video.get_frames([count - 1, 0, count // 2])
    assert frames.shape == (3, *size, 3)
    assert frame_numbers(frames) == [count - 1, 0, count // 2]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize("timeout", [None, 30])
def test_frames_can_be_scaled_down_while_decoding(videos, backend, timeout):
    if backend_problem(backend):
        pytest.skip(backend_problem(backend))
    with open_video(videos["h264.mp4"], backend, timeout=timeout) as video:
        full = video.get_frames([10, 70])
        small = video.get_frames([10, 70], short_side=24)
        assert torch.equal(video.get_frames([10], short_side=64), full[:1])  # never scaled up
    assert small.shape == (2, 24, 32, 3) and small.dtype == torch.uint8
    reference = torch.nn.functional.interpolate(full.permute(0, 3, 1, 2).float(), size=(24, 32), mode="area")
    assert (small.permute(0, 3, 1, 2).float() - reference).abs().mean() < 3


def test_scaled_size_follows_torchvision_resize():
    assert scaled_size(480, 854, 224) == (224, 398)
    assert scaled_size(854, 480, 224) == (398, 224)
    assert scaled_size(200, 300, 224) == (200, 300)
    assert scaled_size(200, 300, None) == (200, 300)


def test_colours_survive_decoding(videos):
    source = numbered_frames(NUM_FRAMES, HEIGHT, WIDTH)
    with open_video(videos["h264.mp4"]) as video:
        decoded = video.get_frames([10])
    # Lossy H.264 at default quality: small average error, RGB order kept (a BGR mix-up is off by ~100).
    assert (decoded.float() - source[10:11].float()).abs().mean() < 6


def test_wrong_container_duration_is_ignored(videos):
    with av.open(videos["wrong_duration.mp4"]) as container:
        assert container.duration < 1000  # microseconds: the metadata claims a blink
    with open_video(videos["wrong_duration.mp4"]) as video:
        assert (video.num_frames, video.duration) == (NUM_FRAMES, pytest.approx(3.0))
        assert frame_numbers(video.get_frames([89])) == [89]


def test_frames_an_edit_list_discards_are_not_counted(videos):
    with open_video(videos["edit_list.mp4"]) as video:
        assert video.num_frames == 55 and video.duration == pytest.approx(55 / 30)
        assert frame_numbers(video.get_frames([0, 1, 54])) == [5, 6, 59]


def test_variable_frame_rate_is_detected_and_mapped_by_time(videos):
    with open_video(videos["vfr.mp4"]) as video:
        assert video.num_frames == 60 and not video.is_constant_frame_rate
        assert video.duration == pytest.approx(30 * 0.033 + 30 * 0.1, abs=0.01)
        # 30 frames of 33 ms then 30 of 100 ms: at 2.0 s we are 1.01 s into the slow part -> frame 40.
        assert video.indices_at_times([0.0, 0.5, 2.0]) == [0, 15, 40]
        assert frame_numbers(video.get_frames([0, 59])) == [0, 59]


def test_rotation_metadata_is_applied(videos):
    source = numbered_frames(10, HEIGHT, WIDTH)
    with open_video(videos["rotated.mp4"]) as video:
        frame = video.get_frames([3])[0]
    assert frame.shape == (WIDTH, HEIGHT, 3)
    expected = torch.rot90(source[3], k=1, dims=(0, 1))  # 90 degrees counter-clockwise, as players show
    assert (frame.float() - expected.float()).abs().mean() < 6


def test_truncated_webm_keeps_its_decodable_frames(videos):
    with open_video(videos["truncated.webm"]) as video:
        assert 0 < video.num_frames < 60
        last = video.num_frames - 1
        assert frame_numbers(video.get_frames([0, last])) == [0, last]


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_raise_an_error_naming_the_file(videos, tmp_path, name):
    path = videos.get(name, str(tmp_path / name))
    with pytest.raises(VideoDecodeError) as caught:
        with open_video(path) as video:
            video.get_frames([0])
    assert str(caught.value).startswith(path) and caught.value.path == path


def test_out_of_range_indices_are_refused(videos):
    with open_video(videos["short.mp4"]) as video, pytest.raises(IndexError, match="short.mp4"):
        video.get_frames([9, 10])


def test_unknown_backend_names_the_config_key(videos):
    with pytest.raises(ValueError, match="DATA.DECODING_BACKEND"):
        open_video(videos["h264.mp4"], backend="opencv")


def test_watchdog_decodes_like_the_inline_reader(videos):
    with open_video(videos["h264.mp4"], timeout=30) as video:
        assert (video.num_frames, video.fps, video.duration) == (NUM_FRAMES, 30.0, pytest.approx(3.0))
        assert frame_numbers(video.get_frames([4, 60])) == [4, 60]
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        open_video(videos["corrupt.mp4"], timeout=30)


def test_watchdog_reports_a_crashed_helper_and_starts_a_new_one(videos):
    video = open_video(videos["h264.mp4"], timeout=30)
    DecodeServer.for_current_thread()._process.kill()  # as if FFmpeg had crashed the helper
    with pytest.raises(VideoDecodeError, match="h264.mp4: decode helper process died"):
        video.get_frames([1])
    video.close()
    with open_video(videos["h264.mp4"], timeout=30) as again:
        assert frame_numbers(again.get_frames([1])) == [1]


def test_watchdog_asks_a_fresh_helper_when_a_termination_signal_ended_the_old_one(videos):
    video = open_video(videos["h264.mp4"], timeout=30)
    helper = DecodeServer.for_current_thread()._process
    helper.terminate()  # SIGTERM, as a cluster preempting the job sends it to every process
    helper.wait()
    assert frame_numbers(video.get_frames([1, 60])) == [1, 60]  # the video reopened on a new helper
    assert DecodeServer.for_current_thread()._process.pid != helper.pid
    video.close()


def test_a_helper_that_sigterm_ends_during_its_start_up_is_started_again(videos, monkeypatch):
    started = []

    def popen_and_terminate_the_first(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        started.append(process)
        if len(started) == 1:
            process.terminate()  # before it could say "ready"
            process.wait()
        return process

    real_popen = decoding.subprocess.Popen
    monkeypatch.setattr(decoding.subprocess, "Popen", popen_and_terminate_the_first)
    monkeypatch.setattr(DecodeServer, "_instances", {})  # this thread starts a new helper
    with open_video(videos["h264.mp4"], timeout=30) as video:
        assert frame_numbers(video.get_frames([1])) == [1]
    assert len(started) == 2
    DecodeServer.for_current_thread().stop()


def test_watchdog_abandons_a_stalled_decode_and_recovers(videos):
    start = time.monotonic()
    with pytest.raises(VideoDecodeError, match="stalled_fifo.mp4: timed out after 1 s"):
        open_video(videos["stalled_fifo.mp4"], timeout=1)
    assert time.monotonic() - start < 20
    assert probe_video(videos["short.mp4"], timeout=30)["num_frames"] == 10


def test_the_decode_helper_does_not_import_torch():
    code = "import sys, hiera_video.datasets.decode_server; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False", "each DataLoader worker's helper would carry torch's memory"


def test_an_undecodable_file_says_why_in_words_without_ffmpegs_error_number(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoDecodeError) as error:
        open_video(str(garbage))
    assert error.value.reason == "cannot open (invalid data found when processing input)"
    assert "Errno" not in str(error.value) and "garbage.mp4" in str(error.value)


def test_the_decode_helper_reads_relative_paths_from_the_current_directory(videos, tmp_path, monkeypatch):
    # The helper process starts once; relative paths must follow this process's later chdir.
    (tmp_path / "here").mkdir()
    shutil.copy(videos["h264.mp4"], tmp_path / "here" / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    with open_video("here/clip.mp4", timeout=30) as video:
        assert video.num_frames == 90
    monkeypatch.chdir(tmp_path / "here")
    with open_video("clip.mp4", timeout=30) as video:
        assert frame_numbers(video.get_frames([3])) == [3]
    with pytest.raises(VideoDecodeError) as caught:
        open_video("missing.mp4", timeout=30)
    assert caught.value.path == "missing.mp4"


def test_an_optional_backend_that_cannot_load_says_why_and_what_to_install(monkeypatch, tmp_path):
    (tmp_path / "broken_decoder.py").write_text("raise OSError('libavcodec.so.59: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(decoding._OPTIONAL_BACKEND_MODULES, "torchcodec", "broken_decoder")
    assert decoding.backend_problem("torchcodec") == (
        "torchcodec is installed but does not load (libavcodec.so.59: cannot open shared object file); "
        + decoding._INSTALL_HINTS["torchcodec"])
    assert "torchcodec" not in decoding.available_backends()
    monkeypatch.setitem(decoding._OPTIONAL_BACKEND_MODULES, "decord", "no_such_decoder_module")
    assert decoding.backend_problem("decord") == "decord is not installed (pip install decord)"
    with pytest.raises(ImportError, match="DATA.DECODING_BACKEND='decord': decord is not installed"):
        open_video(tmp_path / "x.mp4", "decord")
    assert decoding.backend_problem("pyav") is None
