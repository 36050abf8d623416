"""Preparing AVA videos without the ffmpeg command line (PyAV bundles FFmpeg's libraries).

- :func:`trim_video` cuts seconds 900..1801 of a movie into a constant 30 fps H.264 file (the trimmed
  15-minute video; frame 0 = second 900), like ``ffmpeg -ss 900 -t 901 -i movie -r 30 out.mp4``.
- :func:`extract_frames` writes every frame of a trimmed video as ``<video_id>_%06d.jpg`` (1-based), like
  ``ffmpeg -i video -r 30 -q:v 1 <video_id>_%06d.jpg``; :func:`hiera_video.datasets.ava.write_frame_list`
  then lists them.

Both resample to 30 fps by time: output frame ``i`` is the source frame on screen at ``start + i / 30``.
"""
from __future__ import annotations

import math
import os
from fractions import Fraction
from typing import Iterator

import av

from hiera_video.datasets.ava import AVA_FIRST_SECOND, AVA_FPS

# Seconds of each movie AVA annotates (900..1800) plus one to cover the last keyframe's clip.
AVA_TRIM_DURATION = 901.0
# Tolerance for comparing frame times (well under a millisecond).
_TIME_EPSILON = 1e-4


def frames_on_grid(path: str, start: float, duration: float, fps: int = AVA_FPS) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``path`` on an even ``fps`` grid from ``start`` for ``duration`` seconds (or until
    the video ends): for grid time ``t`` the frame shown at ``t``, the first frame for times before it."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
        total = round(duration * fps) if math.isfinite(duration) else math.inf
        emitted, shown, last_time = 0, None, None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if shown is None:
                shown = frame
            # Grid times before this frame's start show the previous frame.
            while emitted < total and frame.time > start + emitted / fps + _TIME_EPSILON:
                yield shown
                emitted += 1
            shown, last_time = frame, frame.time
            if emitted >= total:
                return
        if shown is None:
            raise ValueError(f"{path}: no video frames after {start} s")
        # After the last frame starts, it stays on screen for one source frame duration.
        frame_duration = float(1 / stream.average_rate) if stream.average_rate else 1.0 / fps
        while emitted < total and start + emitted / fps < last_time + frame_duration - _TIME_EPSILON:
            yield shown
            emitted += 1


def trim_video(
    source: str,
    destination: str,
    start: float = AVA_FIRST_SECOND,
    duration: float = AVA_TRIM_DURATION,
    crf: int = 18,
) -> int:
    """Write seconds ``start .. start + duration`` of ``source`` to ``destination`` as 30 fps H.264
    (yuv420p; odd sizes are cropped by one pixel). Returns the number of frames written."""
    count = 0
    with av.open(destination, "w") as output:
        stream = output.add_stream("libx264", rate=Fraction(AVA_FPS), options={"crf": str(crf)})
        stream.pix_fmt = "yuv420p"
        for frame in frames_on_grid(source, start, duration):
            if count == 0:
                stream.width, stream.height = frame.width - frame.width % 2, frame.height - frame.height % 2
            image = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
            # Output timestamps count frames of the 30 fps grid.
            image.pts, image.time_base = count, Fraction(1, AVA_FPS)
            for packet in stream.encode(image):
                output.mux(packet)
            count += 1
        for packet in stream.encode():
            output.mux(packet)
    if count == 0:
        os.remove(destination)
        raise ValueError(f"{source}: nothing to trim between {start} s and {start + duration} s")
    return count


def extract_frames(video: str, frame_dir: str, video_id: str, quality: int = 95) -> int:
    """Write every 30 fps frame of a trimmed ``video`` to ``frame_dir/<video_id>_%06d.jpg`` (from 1);
    returns the number of frames."""
    os.makedirs(frame_dir, exist_ok=True)
    count = 0
    for count, frame in enumerate(frames_on_grid(video, 0.0, float("inf")), start=1):
        frame.to_image().save(os.path.join(frame_dir, f"{video_id}_{count:06d}.jpg"), quality=quality)
    return count
