"""Temporal sampling follows PySlowFast's clip formulas and SSv2's segment sampling exactly."""
import math

import numpy as np
import pytest
import torch

from hiera_video.datasets.sampling import (
    clip_frame_indices,
    clip_span,
    clip_start,
    segment_indices,
    uniform_clip_indices,
    train_clip_indices,
)


def reference_indices(start, clip_size, num_frames, video_frames):
    """The formula written out with NumPy: linspace, clamp, floor."""
    index = np.linspace(start, start + clip_size - 1, num_frames)
    return np.floor(np.clip(index, 0, video_frames - 1)).astype(int).tolist()


def test_clip_span_is_sampling_rate_times_frames_in_source_frames():
    assert clip_span(16, 4, 30, 30.0) == 64  # Hiera 16x4 on 30 fps video
    assert clip_span(16, 4, 30, 60.0) == 128  # twice as many source frames at 60 fps
    assert clip_span(16, 4, 30, 25.0) == pytest.approx(53.333, abs=1e-3)


def test_hiera_16x4_test_clips_on_a_10_second_video():
    # 300 frames, clip 64 -> delta 236; 5 clips with offset sampling start at i * floor(236 / 4) = 59 i.
    indices = uniform_clip_indices(300, 30.0, 16, 4, 30, num_clips=5, use_offset_sampling=True)
    assert indices.shape == (5, 16)
    assert indices[:, 0].tolist() == [0, 59, 118, 177, 236]
    assert indices[0].tolist() == [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 42, 46, 50, 54, 58, 63]
    for clip, start in zip(indices, [0, 59, 118, 177, 236]):
        assert clip.tolist() == reference_indices(start, 64, 16, 300)


def test_test_clips_without_offset_sampling_start_at_delta_i_over_n():
    indices = uniform_clip_indices(250, 25.0, 8, 8, 30, num_clips=3, use_offset_sampling=False)
    size = 8 * 8 / 30 * 25
    delta = 250 - size
    for i, clip in enumerate(indices):
        assert clip.tolist() == reference_indices(delta * i / 3, size, 8, 250)


def test_single_test_clip_is_centred():
    assert clip_start(300, 64, 0, 1, use_offset_sampling=True) == math.floor(236 / 2)


def test_short_video_repeats_its_last_frame():
    indices = uniform_clip_indices(20, 30.0, 16, 4, 30, num_clips=2)
    assert indices[0].tolist() == indices[1].tolist()  # delta is 0: every clip starts at 0
    assert indices[0].tolist() == [0, 4, 8, 12, 16] + [19] * 11  # linspace(0, 63) past frame 19 clamps
    assert indices[0].tolist() == sorted(indices[0].tolist())


def test_training_start_is_uniform_in_zero_to_delta_and_reproducible():
    generator = torch.Generator().manual_seed(3)
    starts = [int(train_clip_indices(300, 30.0, 16, 4, 30, generator)[0]) for _ in range(200)]
    assert min(starts) >= 0 and max(starts) <= 236
    assert min(starts) < 30 and max(starts) > 200  # spread over the whole range
    again = torch.Generator().manual_seed(3)
    assert int(train_clip_indices(300, 30.0, 16, 4, 30, again)[0]) == starts[0]
    clip = train_clip_indices(300, 30.0, 16, 4, 30)
    assert (clip[1:] - clip[:-1]).float().mean() == pytest.approx(4.2, abs=0.1)


def test_clip_index_outside_the_views_is_refused():
    with pytest.raises(ValueError, match="NUM_ENSEMBLE_VIEWS"):
        clip_start(300, 64, 5, 5)


def test_clip_frame_indices_are_int64_and_clamped():
    indices = clip_frame_indices(90.0, 64, 16, 100)
    assert indices.dtype == torch.long and indices.max() == 99


def test_segment_sampling_takes_segment_middles_in_testing():
    # 49 frames, 8 segments of 6: bounds round(6 i) .. round(6 (i + 1)), middle (start + end) // 2.
    assert segment_indices(49, 8, train=False).tolist() == [3, 9, 15, 21, 27, 33, 39, 45]
    segment = 36 / 8  # 37 frames: bounds round to even (4.5 -> 4, 13.5 -> 14)
    expected = [(round(segment * i) + round(segment * (i + 1))) // 2 for i in range(8)]
    assert segment_indices(37, 8, train=False).tolist() == expected


def test_segment_sampling_draws_within_each_segment_in_training():
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([segment_indices(49, 8, train=True, generator=generator) for _ in range(300)])
    for i in range(8):
        assert draws[:, i].min() == 6 * i and draws[:, i].max() == 6 * (i + 1)


def test_segment_sampling_of_a_video_shorter_than_the_segments_repeats_frames():
    indices = segment_indices(4, 8, train=False)
    assert indices.min() >= 0 and indices.max() <= 3 and len(indices) == 8
