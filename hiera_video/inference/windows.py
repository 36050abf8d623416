"""Which frames a prediction looks at: ``T x S`` views over the whole video, or per time window.

Whole video (the default) uses the test protocol of ``tools/run_net.py`` exactly (PySlowFast's uniform
clips, :func:`hiera_video.datasets.sampling.uniform_clip_indices`), so a prediction reproduces the scores
of multi-view testing. With ``window_seconds`` the video is cut into consecutive windows of that length
(the last one ends with the video) and each window gets its own ``T`` clips, spread over the window the
same way; a clip longer than its window is centred on it, so it looks at that moment of the video.
SSv2 models (``TEST.DATASET ssv2``) use segment sampling instead of clips.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import torch

from hiera_video.datasets.decoding import VideoReader
from hiera_video.datasets.sampling import (
    clip_frame_indices, clip_span, clip_start, segment_indices, uniform_clip_indices,
)

_VIEWS = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass(frozen=True)
class ViewSpec:
    """``temporal`` clips x ``spatial`` crops per video (or per window): ``5x3`` is the K400 protocol."""

    temporal: int
    spatial: int

    def __post_init__(self):
        if self.temporal < 1:
            raise ValueError(f"views {self}: at least one temporal clip is needed")
        if self.spatial not in (1, 3):
            raise ValueError(f"views {self}: spatial crops must be 1 (centre) or 3 (both ends and centre)")

    def __str__(self) -> str:
        return f"{self.temporal}x{self.spatial}"

    @property
    def count(self) -> int:
        """Views in total (``temporal * spatial``)."""
        return self.temporal * self.spatial

    @classmethod
    def parse(cls, text: str) -> "ViewSpec":
        """``"5x3"`` -> ``ViewSpec(5, 3)`` (temporal clips x spatial crops)."""
        match = _VIEWS.match(str(text))
        if not match:
            raise ValueError(f"views must look like TxS, e.g. 5x3 (5 clips x 3 crops) or 1x1; got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class ClipSampling:
    """How one clip samples frames: ``num_frames`` every ``sampling_rate`` frames at ``target_fps``."""

    num_frames: int
    sampling_rate: int
    target_fps: float
    use_offset_sampling: bool = True
    segments: bool = False  # SSv2: one frame from the middle of each of num_frames segments

    @classmethod
    def from_cfg(cls, cfg) -> "ClipSampling":
        """From ``DATA.NUM_FRAMES / SAMPLING_RATE / TARGET_FPS / USE_OFFSET_SAMPLING`` and ``TEST.DATASET``."""
        data = cfg.DATA
        return cls(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS, data.USE_OFFSET_SAMPLING,
                   segments=cfg.TEST.DATASET == "ssv2")


def time_windows(duration: float, window_seconds: Optional[float]) -> list[tuple[float, float]]:
    """``[(start, end)]`` in seconds: one window for the whole video, or consecutive windows of
    ``window_seconds`` (the last one ends at ``duration``)."""
    if not window_seconds:
        return [(0.0, duration)]
    if window_seconds <= 0:
        raise ValueError(f"window length must be positive seconds, got {window_seconds}")
    count = max(1, int(-(-(duration - 1e-6) // window_seconds)))  # ceil, ignoring float dust at the end
    return [(i * window_seconds, min((i + 1) * window_seconds, duration)) for i in range(count)]


def whole_video_indices(video: VideoReader, sampling: ClipSampling, num_clips: int) -> torch.Tensor:
    """Frame indices ``[num_clips, num_frames]`` of the test protocol's clips over the whole video."""
    if sampling.segments:
        indices = segment_indices(video.num_frames, sampling.num_frames, train=False).expand(num_clips, -1)
    else:
        indices = uniform_clip_indices(video.num_frames, video.fps, sampling.num_frames, sampling.sampling_rate,
                                       sampling.target_fps, num_clips, sampling.use_offset_sampling)
    return _frames_on_screen(video, indices)


def window_indices(video: VideoReader, sampling: ClipSampling, num_clips: int, start: float,
                   end: float) -> torch.Tensor:
    """Frame indices ``[num_clips, num_frames]`` of ``num_clips`` clips spread over ``[start, end)`` seconds."""
    first = min(int(round(start * video.fps)), video.num_frames - 1)
    stop = max(min(int(round(end * video.fps)), video.num_frames), first + 1)
    length = stop - first
    if sampling.segments:
        indices = (segment_indices(length, sampling.num_frames, train=False) + first).expand(num_clips, -1)
        return _frames_on_screen(video, indices)
    size = clip_span(sampling.num_frames, sampling.sampling_rate, sampling.target_fps, video.fps)
    if size <= length:
        starts = [first + clip_start(length, size, i, num_clips, sampling.use_offset_sampling)
                  for i in range(num_clips)]
    else:
        starts = [first + (length - size) / 2] * num_clips
    indices = torch.stack([clip_frame_indices(s, size, sampling.num_frames, video.num_frames) for s in starts])
    return _frames_on_screen(video, indices)


def _frames_on_screen(video: VideoReader, indices: torch.Tensor) -> torch.Tensor:
    """Variable frame rate: indices are positions on an even grid at the average fps; take the frame on
    screen at each grid time instead (as the datasets do)."""
    if video.is_constant_frame_rate:
        return indices
    times = (indices.float() / video.fps).flatten().tolist()
    return torch.tensor(video.indices_at_times(times)).view_as(indices)
