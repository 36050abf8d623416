"""Re-encode videos for training: a smaller short side and frequent keyframes, so random clips decode fast.

A Kinetics clip as downloaded is often 360p-1080p H.264 with x264's default keyframe interval (250 frames,
8 s at 30 fps): to decode a 16 x 4 training clip (64 frames) at a random place, the decoder starts at the
keyframe before it, up to 250 frames earlier, at full resolution. PySlowFast recommends re-encoding to a
short side of 320 pixels; with a keyframe every KEYFRAME_INTERVAL frames as well, a clip costs little more
than its own 64 frames (``benchmarks/decode_floor.py`` measures it).

:func:`reencode_video` re-encodes one file (H.264, yuv420p, the source's frame times kept, rotation applied
to the pixels, audio dropped: the models do not use it); :func:`reencode_videos` does a list of them with a
progress bar, in worker processes, resumably (finished outputs are kept; each output is written under a
temporary name and renamed when complete), and lists the videos that failed.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .decoding import VideoDecodeError, error_reason, scaled_size

SHORT_SIDE = 320
# One keyframe a second at 30 fps: a random clip starts at most 29 frames after one.
KEYFRAME_INTERVAL = 30
CRF = 23


@dataclass
class ReencodeReport:
    """What :func:`reencode_videos` did: counts and the failed sources with their reasons."""

    written: int = 0
    kept: int = 0
    failed: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line: how many were written, kept from an earlier run, failed."""
        return f"{self.written} re-encoded, {self.kept} already done, {len(self.failed)} failed"


def even_size(height: int, width: int, short_side: Optional[int]) -> tuple[int, int]:
    """The output size: scaled so the short side is ``short_side`` (never up), rounded down to even
    numbers as 4:2:0 chroma needs."""
    height, width = scaled_size(height, width, short_side)
    return max(2, height - height % 2), max(2, width - width % 2)


def _rotated_rgb(frame, height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3] of a decoded frame at the stored size ``height`` x ``width``, turned upright."""
    rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)) if quarter_turns else rgb


def reencode_video(source: str | os.PathLike, target: str | os.PathLike, short_side: Optional[int] = SHORT_SIDE,
                   keyframe_interval: int = KEYFRAME_INTERVAL, crf: int = CRF, preset: str = "veryfast") -> str:
    """Re-encode ``source`` into ``target`` (H.264 MP4): short side ``short_side`` (None: keep the size),
    a keyframe every ``keyframe_interval`` frames, quality ``crf``. Frame times are kept (variable frame
    rates stay variable). Raises :class:`VideoDecodeError` naming ``source`` when it cannot be decoded."""
    import av

    source, target = os.fspath(source), os.fspath(target)
    partial = f"{target}.partial.mp4"
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(source, metadata_errors="ignore") as reader:
            if not reader.streams.video:
                raise VideoDecodeError(source, "no video stream (audio-only or not a video file)")
            stream = reader.streams.video[0]
            stream.thread_type = "AUTO"
            _encode_stream(reader, stream, partial, short_side, keyframe_interval, crf, preset)
    except av.FFmpegError as error:
        Path(partial).unlink(missing_ok=True)
        raise VideoDecodeError(source, f"cannot re-encode ({error_reason(error)})") from None
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def _encode_stream(reader, stream, partial: str, short_side: Optional[int], keyframe_interval: int, crf: int,
                   preset: str) -> None:
    """Decode ``stream`` of ``reader`` and encode it into ``partial``; frames keep their timestamps."""
    import av

    rate = stream.average_rate or stream.guessed_rate or 30
    options = {"crf": str(crf), "preset": preset, "g": str(keyframe_interval),
               "keyint_min": str(keyframe_interval), "sc_threshold": "0"}
    frames_written = 0
    with av.open(partial, "w", format="mp4") as writer:
        out = None
        first_pts = None
        for frame in reader.decode(stream):
            if out is None:
                height, width = even_size(frame.height, frame.width, short_side)
                rgb = _rotated_rgb(frame, height, width)
                out = writer.add_stream("libx264", rate=rate, options=options)
                out.height, out.width = rgb.shape[:2]
                out.pix_fmt = "yuv420p"
                out.codec_context.time_base = stream.time_base
            else:
                rgb = _rotated_rgb(frame, height, width)
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if frame.pts is not None:
                first_pts = frame.pts if first_pts is None else first_pts
                picture.pts, picture.time_base = frame.pts - first_pts, stream.time_base
            for packet in out.encode(picture):
                writer.mux(packet)
            frames_written += 1
        if out is None:
            raise VideoDecodeError(reader.name, "video stream has no frames")
        for packet in out.encode():
            writer.mux(packet)


def _reencode_one(job: tuple) -> tuple[str, Optional[str]]:
    """Worker: (source, error reason or None)."""
    source, target, options = job
    try:
        reencode_video(source, target, **options)
        return source, None
    except VideoDecodeError as error:
        return source, error.reason
    except OSError as error:
        return source, f"cannot write {target} ({error.strerror or error})"


def reencode_videos(pairs: Sequence[tuple[str, str]], workers: int = 1, progress: bool = True,
                    **options) -> ReencodeReport:
    """Re-encode every ``(source, target)`` pair with :func:`reencode_video` ``options`` in ``workers``
    processes; targets that exist already are kept (a rerun resumes). Returns the report."""
    from tqdm import tqdm

    report = ReencodeReport()
    todo = []
    for source, target in pairs:
        if os.path.exists(target):
            report.kept += 1
        else:
            todo.append((source, target, options))
    with tqdm(total=len(todo), desc="re-encoding", unit="video", disable=not progress) as bar:
        if workers <= 1:
            _tally(map(_reencode_one, todo), report, bar)
        else:
            with ProcessPoolExecutor(workers) as pool:
                _tally(pool.map(_reencode_one, todo), report, bar)
    return report


def _tally(results, report: ReencodeReport, bar) -> None:
    """Count each (source, reason) result into ``report`` as it arrives."""
    for source, reason in results:
        if reason is None:
            report.written += 1
        else:
            report.failed[source] = reason
        bar.update()
