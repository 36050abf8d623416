"""Fixtures for the data-pipeline tests: tiny videos of every messy and broken kind, and a small config.

Every good video is made of :func:`numbered_frames`, so a test reads back which source frame a decoder,
sampler or transform returned with :func:`read_frame_number`.
"""
import os
import struct
import threading
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from hiera_video.config.defaults import get_cfg
from hiera_video.datasets.synthetic import numbered_frames, write_audio_only, write_video

WIDTH, HEIGHT, NUM_FRAMES = 64, 48, 90
# Open write ends of stalled FIFOs, kept for the whole session (closing one would deliver EOF).
_STALLED_WRITERS = []


def write_variable_rate_video(path, frames, steps_ms):
    """H.264 in MP4 whose i-th frame lasts ``steps_ms[i]`` milliseconds."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        time_ms = 0
        for frame_array, step in zip(frames.numpy(), steps_ms):
            frame = av.VideoFrame.from_ndarray(frame_array, format="rgb24")
            frame.pts, frame.time_base = time_ms, Fraction(1, 1000)
            time_ms += step
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_rotated_video(path, frames, degrees):
    """H.264 in MP4 with a display-matrix rotation of ``degrees`` counter-clockwise."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.set_display_rotation(degrees)
        for frame_array in frames.numpy():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_zero_frame_video(path):
    """A Matroska file whose video stream has no frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        container.start_encoding()


def write_with_wrong_duration(source, target):
    """Copy an MP4 with the movie, track and media durations (version-0 boxes) overwritten by 1 tick."""
    with open(source, "rb") as handle:
        data = bytearray(handle.read())
    for box, duration_offset in ((b"mvhd", 20), (b"mdhd", 20), (b"tkhd", 24)):
        start = data.index(box)
        assert data[start + 4] == 0, "version-1 boxes have 64-bit durations"
        data[start + duration_offset : start + duration_offset + 4] = struct.pack(">I", 1)
    with open(target, "wb") as handle:
        handle.write(data)


def write_edit_list_cut(source, target, cut_frames):
    """Remux ``source`` (keyframes every 10 frames, no B-frames) with its first ``cut_frames`` frames before
    time 0, as ``ffmpeg -ss ... -c copy`` does: the MP4 edit list marks them discarded."""
    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        stream = reader.streams.video[0]
        output = writer.add_stream_from_template(stream)
        shift = None
        for packet in reader.demux(stream):
            if packet.size == 0:
                continue
            shift = shift if shift is not None else cut_frames * packet.duration
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, output
            writer.mux(packet)


def truncate(source, target, fraction=0.5):
    """Copy the first ``fraction`` of ``source``'s bytes to ``target``."""
    with open(source, "rb") as handle:
        data = handle.read()
    with open(target, "wb") as handle:
        handle.write(data[: int(len(data) * fraction)])


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    """Paths of tiny test videos by kind (see the module docstring)."""
    root = tmp_path_factory.mktemp("videos")
    frames = numbered_frames(NUM_FRAMES, HEIGHT, WIDTH)
    paths = {name: str(root / name) for name in (
        "h264.mp4", "vp9.webm", "av1.mkv", "yuv444_odd.mp4", "10bit.mp4", "vfr.mp4", "rotated.mp4",
        "raw.h264", "wrong_duration.mp4", "small_gop.mp4", "no_bframes.mp4", "edit_list.mp4", "short.mp4", "audio_only.m4a", "zero_frames.mkv", "truncated.mp4",
        "truncated.webm", "corrupt.mp4", "empty.mp4", "stalled_fifo.mp4",
    )}
    write_video(paths["h264.mp4"], frames)
    write_video(paths["vp9.webm"], frames[:60], codec="libvpx-vp9")
    write_video(paths["av1.mkv"], frames[:30], codec="libsvtav1")
    write_video(paths["yuv444_odd.mp4"], numbered_frames(30, HEIGHT - 1, WIDTH - 1), pix_fmt="yuv444p")
    write_video(paths["10bit.mp4"], frames[:30], pix_fmt="yuv420p10le")
    write_variable_rate_video(paths["vfr.mp4"], frames[:60], [33] * 30 + [100] * 30)
    write_rotated_video(paths["rotated.mp4"], frames[:10], 90)
    write_video(paths["raw.h264"], frames[:30], container_format="h264")
    write_with_wrong_duration(paths["h264.mp4"], paths["wrong_duration.mp4"])
    write_video(paths["small_gop.mp4"], frames, options={"g": "10"})
    write_video(paths["no_bframes.mp4"], frames[:60], options={"g": "10", "bf": "0"})
    write_edit_list_cut(paths["no_bframes.mp4"], paths["edit_list.mp4"], cut_frames=5)
    write_video(paths["short.mp4"], frames[:10])
    write_audio_only(paths["audio_only.m4a"])
    write_zero_frame_video(paths["zero_frames.mkv"])
    truncate(paths["h264.mp4"], paths["truncated.mp4"])
    truncate(paths["vp9.webm"], paths["truncated.webm"])
    with open(paths["corrupt.mp4"], "wb") as handle:
        handle.write(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    open(paths["empty.mp4"], "wb").close()
    os.mkfifo(paths["stalled_fifo.mp4"])
    # A writer that opens the FIFO and never writes (nor closes): readers block in read() for ever.
    threading.Thread(target=lambda: _STALLED_WRITERS.append(open(paths["stalled_fifo.mp4"], "wb")),
                     daemon=True).start()
    return paths


BROKEN = ("audio_only.m4a", "zero_frames.mkv", "truncated.mp4", "corrupt.mp4", "empty.mp4", "missing.mp4")


@pytest.fixture
def small_cfg():
    """A config with tiny clips: 8 frames every 2 at 30 fps, 32 px crops, no decode watchdog."""
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = 3
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 2
    cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = 32, 32
    cfg.DATA.TRAIN_JITTER_SCALES = [40, 48]
    cfg.DATA.DECODE_TIMEOUT = 0.0
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 2, 3
    cfg.DATA_LOADER.NUM_WORKERS = 0
    torch.manual_seed(0)
    return cfg
