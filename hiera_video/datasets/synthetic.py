"""Write small videos from frame tensors, for tests, demos and synthetic datasets.

``write_video(path, frames)`` encodes ``uint8 [T, H, W, C]`` frames with PyAV (which bundles FFmpeg).
``numbered_frames(...)`` makes frames whose content encodes their own index, so a test can read back
which source frame a decoder returned even after lossy compression.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Optional

import av
import numpy as np
import torch

# Rows of the frame that carry the frame index as a binary code (see ``numbered_frames``).
_CODE_BITS = 8


def write_video(
    path: str | os.PathLike,
    frames: torch.Tensor | np.ndarray,
    fps: float | Fraction = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: Optional[dict] = None,
    container_format: Optional[str] = None,
) -> str:
    """Encode ``frames`` (uint8 ``[T, H, W, C]``, RGB) into a video file at ``path``.

    Args:
        path: output file; the container follows the extension (``.mp4``, ``.webm``, ``.mkv``) unless
            ``container_format`` is given.
        frames: uint8 frames ``[T, H, W, 3]``. Odd sizes are fine for ``yuv444p``; 4:2:0 formats need even
            width and height (FFmpeg's rule), which is checked here with a clear message.
        fps: constant frame rate (an int, float or Fraction).
        codec: FFmpeg encoder name, e.g. ``libx264``, ``libvpx-vp9``, ``libsvtav1``, ``mpeg4``.
        pix_fmt: stored pixel format, e.g. ``yuv420p``, ``yuv444p``, ``yuv420p10le``.
        options: encoder options (``{"crf": "0"}`` for lossless-ish H.264, ...).
        container_format: force the container (``"mp4"``, ``"webm"``, ...).

    Returns:
        ``path`` as a string.
    """
    frames = torch.as_tensor(frames)
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"write_video({path}): frames must be uint8 [T, H, W, 3], got {tuple(frames.shape)} {frames.dtype}"
        )
    height, width = int(frames.shape[1]), int(frames.shape[2])
    if "420" in pix_fmt and (height % 2 or width % 2):
        raise ValueError(
            f"write_video({path}): {pix_fmt} needs even width and height, got {width}x{height}; "
            "use pix_fmt='yuv444p' for odd sizes"
        )
    path = str(path)
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    with av.open(path, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for frame_array in frames.numpy():
            frame = av.VideoFrame.from_ndarray(frame_array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbered_frames(num_frames: int, height: int = 48, width: int = 64, seed: int = 0) -> torch.Tensor:
    """Frames ``uint8 [T, H, W, 3]`` whose index is readable after lossy encoding.

    The top ``_CODE_BITS`` horizontal bands of the frame hold the bits of the frame index (black / white);
    the rest is a smooth colour gradient that shifts with the index, so spatial crops and flips are also
    visible. Read the index back with :func:`read_frame_number`.
    """
    if num_frames >= 2**_CODE_BITS:
        raise ValueError(f"numbered_frames: at most {2**_CODE_BITS - 1} frames, got {num_frames}")
    generator = torch.Generator().manual_seed(seed)
    offset = torch.randint(0, 64, (3,), generator=generator)
    rows = torch.arange(height).view(height, 1)
    cols = torch.arange(width).view(1, width)
    frames = torch.empty(num_frames, height, width, 3, dtype=torch.uint8)
    band = height // (2 * _CODE_BITS)
    for index in range(num_frames):
        red = (cols * 255 // max(width - 1, 1)).expand(height, width)
        green = (rows * 255 // max(height - 1, 1)).expand(height, width)
        blue = torch.full((height, width), (index * 7) % 256)
        frame = torch.stack([red, green, blue], dim=-1) + offset
        for bit in range(_CODE_BITS):
            frame[bit * band : (bit + 1) * band] = 255 if (index >> bit) & 1 else 0
        frames[index] = frame.clamp(0, 255).to(torch.uint8)
    return frames


def read_frame_number(frame: torch.Tensor) -> int:
    """Decode the index written by :func:`numbered_frames` from one ``[H, W, 3]`` uint8 frame."""
    height = frame.shape[0]
    band = height // (2 * _CODE_BITS)
    number = 0
    for bit in range(_CODE_BITS):
        centre = frame[bit * band + band // 2, :, :].float().mean()
        if centre > 127:
            number |= 1 << bit
    return number


def write_audio_only(path: str | os.PathLike, num_frames: int = 10) -> None:
    """An AAC file without any video stream (a "video" every decoder must refuse), for tests."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(num_frames):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
