"""The clip with its predicted labels drawn on the frames (``tools/predict.py --output-video``).

Every frame is decoded (PyAV), the top labels of the prediction in force at that frame's time (the
window it falls in, or the whole video's) are drawn in a dark box at the top left (Pillow's default font,
scaled to the frame height), and the frame is encoded with libx264 at the source's size, frame count and
average frame rate. Audio is not copied; a variable-frame-rate source comes out at its average rate.
"""
from __future__ import annotations

import os
from fractions import Fraction
from functools import lru_cache
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hiera_video.datasets.decoding import PyAVReader, VideoDecodeError

_BOX_OPACITY = 0.6  # how dark the box behind the text is (0: invisible, 1: black)


@lru_cache(maxsize=8)
def label_font(frame_height: int) -> ImageFont.ImageFont:
    """Pillow's default font at about 1/18 of the frame height (at least 10 px)."""
    size = max(10, round(frame_height / 18))
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def label_lines(top_k: list[dict], count: int) -> list[str]:
    """``"71.3% juggling"`` for each of the first ``count`` labels."""
    return [f"{100 * entry['score']:.1f}% {entry['label']}" for entry in top_k[:count]]


def text_box(lines: list[str], frame_height: int) -> tuple[int, int, int, int]:
    """The ``(left, top, right, bottom)`` pixel box the lines are drawn in, at the frame's top left."""
    font, padding = label_font(frame_height), max(2, frame_height // 100)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = max(measure.textbbox((0, 0), "Ag", font=font)[3], 1)
    width = max(measure.textlength(line, font=font) for line in lines)
    return 0, 0, int(np.ceil(width)) + 2 * padding, line_height * len(lines) + 2 * padding


def draw_labels(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """A copy of uint8 ``[H, W, 3]`` ``frame`` with ``lines`` in white on a darkened box (see :func:`text_box`)."""
    if not lines:
        return frame
    height = frame.shape[0]
    left, top, right, bottom = text_box(lines, height)
    right, bottom = min(right, frame.shape[1]), min(bottom, height)
    out = frame.copy()
    box = out[top:bottom, left:right].astype(np.float32)
    out[top:bottom, left:right] = (box * (1 - _BOX_OPACITY)).astype(np.uint8)
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    font, padding = label_font(height), max(2, height // 100)
    line_height = (bottom - top - 2 * padding) // len(lines)
    for number, line in enumerate(lines):
        draw.text((left + padding, top + padding + number * line_height), line, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def labels_at(record: dict, seconds: float, count: int) -> list[str]:
    """The lines to draw at ``seconds``: the window holding that time, else the whole video's top labels."""
    for window in record.get("windows") or []:
        if window["start"] <= seconds < window["end"]:
            return label_lines(window["top_k"], count)
    windows = record.get("windows") or []
    if windows and seconds >= windows[-1]["end"]:
        return label_lines(windows[-1]["top_k"], count)
    return label_lines(record["top_k"], count)


def _decoded_frames(container, stream) -> Iterator[tuple[np.ndarray, Optional[float]]]:
    """``(rgb [H, W, 3], seconds or None)`` for every frame in presentation order, rotation applied."""
    for frame in container.decode(stream):
        # The reader's conversion, so that frames look exactly as predict decoded them (rotation included).
        yield PyAVReader._to_rgb(frame, None), frame.time


def write_overlay_video(source: str | os.PathLike, output: str | os.PathLike, record: dict,
                        top_k: int = 3) -> dict:
    """Write ``source`` to ``output`` (an ``.mp4``) with ``record``'s top labels drawn on every frame.

    ``record`` is a result of :meth:`VideoClassifier.predict`. Returns ``{"path", "frames", "width",
    "height", "fps"}`` of the written video. Raises :class:`VideoDecodeError` when ``source`` cannot be read.
    """
    import av

    source, output = os.fspath(source), os.fspath(output)
    if record.get("error"):
        raise ValueError(f"{source}: no prediction to draw ({record['error']})")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    written, first_time, out_stream = 0, None, None
    try:
        with av.open(source, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = Fraction(stream.average_rate or stream.guessed_rate or 30).limit_denominator(1001)
            with av.open(output, "w") as muxer:
                for rgb, seconds in _decoded_frames(container, stream):
                    if out_stream is None:
                        out_stream = _add_h264_stream(muxer, rate, rgb.shape[1], rgb.shape[0])
                        first_time = seconds
                    elapsed = written / float(rate) if seconds is None or first_time is None else seconds - first_time
                    frame = av.VideoFrame.from_ndarray(draw_labels(rgb, labels_at(record, elapsed, top_k)),
                                                       format="rgb24")
                    frame.pts = written
                    for packet in out_stream.encode(frame):
                        muxer.mux(packet)
                    written += 1
                if out_stream is not None:
                    for packet in out_stream.encode():
                        muxer.mux(packet)
    except (av.FFmpegError, IndexError) as error:
        _remove_partial(output)
        raise VideoDecodeError(source, f"cannot write the labelled video {output} ({error})") from None
    if out_stream is None:
        _remove_partial(output)
        raise VideoDecodeError(source, "no frames to draw on")
    return {"path": output, "frames": written, "width": out_stream.width, "height": out_stream.height,
            "fps": float(rate)}


def _add_h264_stream(muxer, rate: Fraction, width: int, height: int):
    """An H.264 stream at ``rate`` (CRF 18: visually lossless); 4:2:0 needs even sizes, odd ones are stored 4:4:4."""
    stream = muxer.add_stream("libx264", rate=rate, options={"crf": "18"})  # sharp text edges
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    stream.time_base = Fraction(1) / rate
    return stream


def _remove_partial(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
