"""Views per time window (``--window SECONDS``), and the ``TxS`` views a prediction is asked for.

The whole video always gets the test views of multi-view testing
(:class:`hiera_video.datasets.test_views.MultiViewPipeline`). With ``window_seconds`` the video is also cut
into consecutive windows of that length (the last one ends with the video) and each window gets its own
views: ``T`` clips spread over the window the way test clips spread over a video; a clip longer than its
window is centred on it, so it looks at that moment of the video. SSv2 models (``TEST.DATASET ssv2``) use
segment sampling instead of clips.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from hiera_video.datasets.decoding import VideoReader
from hiera_video.datasets.sampling import clip_frame_indices, clip_span, clip_start, frames_on_screen, segment_indices
from hiera_video.datasets.test_views import ClipSampling

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


def check_window_seconds(window_seconds: float) -> None:
    """Raise ValueError unless ``window_seconds`` is a positive, finite number of seconds."""
    if not (math.isfinite(window_seconds) and window_seconds > 0):
        raise ValueError(f"window length must be a positive number of seconds, got {window_seconds}")


def time_windows(duration: float, window_seconds: float) -> list[tuple[float, float]]:
    """``[(start, end)]`` in seconds: consecutive windows of ``window_seconds`` (the last one ends at
    ``duration``)."""
    check_window_seconds(window_seconds)
    count = max(1, int(-(-(duration - 1e-6) // window_seconds)))  # ceil, ignoring float dust at the end
    return [(i * window_seconds, min((i + 1) * window_seconds, duration)) for i in range(count)]


def window_indices(video: VideoReader, sampling: ClipSampling, num_clips: int, start: float,
                   end: float) -> torch.Tensor:
    """Frame indices ``[num_clips, num_frames]`` of ``num_clips`` clips spread over ``[start, end)`` seconds."""
    first = min(int(round(start * video.fps)), video.num_frames - 1)
    stop = max(min(int(round(end * video.fps)), video.num_frames), first + 1)
    length = stop - first
    if sampling.segments:
        indices = first + torch.stack([segment_indices(length, sampling.num_frames, train=False, view=view,
                                                       num_views=num_clips) for view in range(num_clips)])
        return frames_on_screen(video, indices)
    size = clip_span(sampling.num_frames, sampling.sampling_rate, sampling.target_fps, video.fps)
    if size <= length:
        starts = [first + clip_start(length, size, i, num_clips, sampling.use_offset_sampling)
                  for i in range(num_clips)]
    else:
        starts = [first + (length - size) / 2] * num_clips
    indices = torch.stack([clip_frame_indices(s, size, sampling.num_frames, video.num_frames) for s in starts])
    return frames_on_screen(video, indices)
