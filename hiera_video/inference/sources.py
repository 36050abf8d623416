"""What a prediction reads: video files (or folders of them) and in-memory uint8 frame arrays."""
from __future__ import annotations

import os
from typing import Iterable, Optional

import numpy as np
import torch

from hiera_video.datasets.decoding import VideoDecodeError, VideoReader, downscale, open_video

# Extensions collected from a folder (FFmpeg reads many more; name such files directly).
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts")


class ArrayVideo(VideoReader):
    """A clip already in memory: uint8 ``[T, H, W, 3]`` RGB frames (NumPy or torch) at ``fps``."""

    def __init__(self, frames, fps: float, name: str = "<array>"):
        frames = frames.numpy(force=True) if isinstance(frames, torch.Tensor) else np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"frames must be uint8 [T, H, W, 3] RGB with T >= 1, got {tuple(frames.shape)} "
                             f"{frames.dtype}")
        if not fps or fps <= 0:
            raise ValueError(f"frames need their frame rate: fps must be positive, got {fps}")
        self.path, self._frames, self.fps = name, frames, float(fps)
        self.num_frames = int(frames.shape[0])
        self.frame_times = np.arange(self.num_frames) / self.fps
        self.height, self.width = int(frames.shape[1]), int(frames.shape[2])
        self.codec = "array"

    def _read_frames(self, sorted_unique_indices: list[int], short_side: Optional[int]) -> np.ndarray:
        return downscale(self._frames[sorted_unique_indices], short_side)


def open_source(source, backend: str = "pyav", timeout: Optional[float] = None,
                fps: Optional[float] = None) -> VideoReader:
    """A :class:`VideoReader` for a file path (decoded with ``backend``) or a uint8 frame array (at ``fps``)."""
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise VideoDecodeError(os.fspath(source), "file not found")
        return open_video(source, backend, timeout=timeout or None)
    if fps is None:
        raise ValueError("predicting on a frame array needs its frame rate: pass fps=...")
    return ArrayVideo(source, fps)


def find_videos(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Expand the command line's inputs: files stay as given (in order), folders give their video files
    (by extension, recursively, sorted). A missing path is kept, so that it is reported as a failure."""
    paths: list[str] = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(item)
                for name in names
                if name.lower().endswith(VIDEO_EXTENSIONS)
            )
            if not found:
                extensions = " ".join(VIDEO_EXTENSIONS)
                raise FileNotFoundError(f"folder {item} holds no video files (extensions: {extensions})")
            paths.extend(found)
        else:
            paths.append(item)
    return paths
