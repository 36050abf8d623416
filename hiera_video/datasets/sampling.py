"""Which frames a clip uses: PySlowFast's clip formulas and SSv2's segment sampling.

Clip sampling (Kinetics; PySlowFast ``decoder.get_start_end_idx`` and ``utils.temporal_sampling``, kept
exactly so that published numbers reproduce):

- A clip of ``NUM_FRAMES`` frames every ``SAMPLING_RATE`` frames at ``TARGET_FPS`` spans
  ``clip_size = SAMPLING_RATE * NUM_FRAMES / TARGET_FPS * fps`` source frames (a float).
- ``delta = max(num_frames - clip_size, 0)``. Training: ``start ~ uniform(0, delta)``. Testing clip ``i`` of
  ``N``: ``i * floor(delta / (N - 1))`` (``floor(delta / 2)`` when N = 1) with ``DATA.USE_OFFSET_SAMPLING``,
  else ``delta * i / N``.
- Frame indices: ``linspace(start, start + clip_size - 1, NUM_FRAMES)``, clamped to ``[0, num_frames - 1]``
  and floored. A video shorter than a clip therefore repeats its last frame.

Segment sampling (SSv2; PySlowFast ``ssv2.get_seq_frames``): ``seg = (num_frames - 1) / NUM_FRAMES``;
segment ``i`` spans ``round(seg * i) .. round(seg * (i + 1))`` (inclusive); training draws a random frame
in each segment, testing takes ``(start + end) // 2``.

Variable frame rate (:func:`frames_on_screen`): clip indices are positions on an even grid at the video's
average fps; the frame on screen at each grid time is taken instead.

Test views are ordered temporal-major: view ``v`` is temporal clip ``v // S`` and spatial crop ``v % S``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch


def clip_span(num_frames: int, sampling_rate: int, target_fps: float, video_fps: float) -> float:
    """Source frames one clip spans: ``sampling_rate * num_frames / target_fps * video_fps``."""
    return sampling_rate * num_frames / target_fps * video_fps


def clip_start(
    video_frames: int,
    clip_size: float,
    clip_index: int,
    num_clips: int,
    use_offset_sampling: bool = True,
    generator: Optional[torch.Generator] = None,
) -> float:
    """Start frame (a float) of clip ``clip_index`` of ``num_clips``; ``clip_index = -1`` draws a random one."""
    delta = max(video_frames - clip_size, 0)
    if clip_index == -1:
        return float(torch.rand((), generator=generator)) * delta
    if not 0 <= clip_index < num_clips:
        raise ValueError(f"clip_index {clip_index} outside [0, {num_clips}) (TEST.NUM_ENSEMBLE_VIEWS)")
    if use_offset_sampling:
        if num_clips == 1:
            return float(math.floor(delta / 2))
        return float(clip_index * math.floor(delta / (num_clips - 1)))
    return delta * clip_index / num_clips


def clip_frame_indices(start: float, clip_size: float, num_frames: int, video_frames: int) -> torch.Tensor:
    """``num_frames`` indices from ``linspace(start, start + clip_size - 1)``, clamped and floored; int64."""
    index = torch.linspace(start, start + clip_size - 1, num_frames)
    return torch.clamp(index, 0, video_frames - 1).long()


def train_clip_indices(
    video_frames: int,
    video_fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Frame indices ``[num_frames]`` of one clip at a random position (training)."""
    size = clip_span(num_frames, sampling_rate, target_fps, video_fps)
    start = clip_start(video_frames, size, -1, 1, generator=generator)
    return clip_frame_indices(start, size, num_frames, video_frames)


def uniform_clip_indices(
    video_frames: int,
    video_fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    num_clips: int,
    use_offset_sampling: bool = True,
) -> torch.Tensor:
    """Frame indices ``[num_clips, num_frames]`` of uniformly spaced test clips."""
    size = clip_span(num_frames, sampling_rate, target_fps, video_fps)
    starts = [clip_start(video_frames, size, i, num_clips, use_offset_sampling) for i in range(num_clips)]
    return torch.stack([clip_frame_indices(s, size, num_frames, video_frames) for s in starts])


def segment_indices(
    video_frames: int, num_segments: int, train: bool, generator: Optional[torch.Generator] = None,
    view: int = 0, num_views: int = 1,
) -> torch.Tensor:
    """SSv2 segment sampling: one frame per segment; int64.

    Training draws it at random. Testing takes test clip ``view`` of ``num_views`` at the same place in
    every segment, the places spread evenly ((view + 0.5) / num_views of the way through it), so one clip
    takes the middles and several clips take different frames."""
    segment = (video_frames - 1) / num_segments
    indices = []
    for i in range(num_segments):
        start, end = round(segment * i), round(segment * (i + 1))
        if train:
            indices.append(int(torch.randint(start, end + 1, (), generator=generator)))
        else:
            indices.append(math.floor(start + (end - start) * (view + 0.5) / num_views))
    return torch.tensor(indices, dtype=torch.long)


def frames_on_screen(video, indices: torch.Tensor) -> torch.Tensor:
    """``indices`` (any shape) of a variable-frame-rate ``video`` (a ``VideoReader``) read as times on an even
    grid at its average fps, replaced by the frames on screen at those times; unchanged at a constant rate."""
    if video.is_constant_frame_rate:
        return indices
    times = (indices.float() / video.fps).flatten().tolist()
    return torch.tensor(video.indices_at_times(times)).view_as(indices)
