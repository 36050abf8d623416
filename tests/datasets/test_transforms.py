"""Spatial transforms: test crops where PySlowFast puts them, one random draw per clip, normalization."""
import random

import pytest
import torch

from hiera_video.datasets.transforms import (
    RandomErasing,
    ShortSideJitterCrop,
    TrainTransform,
    VideoRandAugment,
    evaluation_short_side,
    normalize,
    spatial_crop,
    spatial_views,
)

MEAN, STD = [0.45] * 3, [0.225] * 3


def column_coded_frames(num_frames, height, width):
    """uint8 [T, H, W, 3] whose red value is the column and green value the row."""
    cols = torch.arange(width).view(1, 1, width).expand(num_frames, height, width)
    rows = torch.arange(height).view(1, height, 1).expand(num_frames, height, width)
    return torch.stack([cols, rows, torch.zeros_like(cols)], dim=-1).to(torch.uint8)


def unnormalize(view):
    """Float [C, T, H, W] -> uint8-valued [C, T, H, W]."""
    mean, std = torch.tensor(MEAN).view(3, 1, 1, 1), torch.tensor(STD).view(3, 1, 1, 1)
    return ((view * std + mean) * 255).round()


def test_normalize_maps_mean_to_zero_and_std_to_one():
    clip = torch.full((2, 3, 4, 4), round(0.45 * 255), dtype=torch.uint8)
    assert normalize(clip, MEAN, STD).abs().max() < 0.01
    white = torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)
    assert normalize(white, MEAN, STD).flatten().tolist() == pytest.approx([(1 - 0.45) / 0.225] * 3)


def test_three_test_crops_are_left_centre_right_of_a_landscape_clip():
    frames = column_coded_frames(4, 32, 64)  # short side already 32: no resize
    views = spatial_views(frames, 32, 3, 40, MEAN, STD)
    assert views.shape == (3, 3, 4, 32, 32)
    first_columns = [int(unnormalize(view)[0, 0, 0, 0]) for view in views]
    assert first_columns == [0, 16, 32]  # ceil((64 - 32) / 2) = 16


def test_three_test_crops_are_top_centre_bottom_of_a_portrait_clip():
    frames = column_coded_frames(2, 64, 32)
    first_rows = [int(unnormalize(view)[1, 0, 0, 0]) for view in spatial_views(frames, 32, 3, 40, MEAN, STD)]
    assert first_rows == [0, 16, 32]


def test_one_test_crop_resizes_to_the_train_short_side_then_takes_the_centre():
    frames = column_coded_frames(2, 20, 40)
    views = spatial_views(frames, 16, 1, 32, MEAN, STD)  # 20x40 -> 32x64, centre 16x16 at column 24
    assert views.shape == (1, 3, 2, 16, 16)
    red = unnormalize(views[0])[0, 0, 0]
    assert red[0].item() == pytest.approx(24 * 40 / 64, abs=1.5)


def test_one_test_crop_never_resizes_below_the_crop():
    assert evaluation_short_side(224, 1, 256) == 256 and evaluation_short_side(224, 3, 256) == 224
    assert evaluation_short_side(224, 1, 160) == 224
    views = spatial_views(column_coded_frames(2, 20, 40), 16, 1, 8, MEAN, STD)
    assert views.shape == (1, 3, 2, 16, 16)


def test_spatial_crop_refuses_a_crop_larger_than_the_frame():
    with pytest.raises(ValueError, match="resize the short side"):
        spatial_crop(torch.zeros(1, 3, 10, 20), 16, 1)


def test_spatial_views_refuse_two_crops():
    with pytest.raises(ValueError, match="NUM_SPATIAL_CROPS"):
        spatial_views(column_coded_frames(1, 32, 32), 32, 2, 32, MEAN, STD)


def test_short_side_jitter_scales_within_range_and_crops():
    random.seed(0)
    crop = ShortSideJitterCrop(40, 48, 32)
    for _ in range(10):
        out = crop(torch.zeros(2, 3, 30, 60))
        assert out.shape == (2, 3, 32, 32)


@pytest.mark.parametrize("random_resized_crop", [True, False])
def test_train_transform_gives_c_t_h_w_with_one_draw_for_all_frames(random_resized_crop):
    frame = column_coded_frames(1, 48, 64)
    clip = frame.expand(6, -1, -1, -1).contiguous()  # six identical frames
    transform = TrainTransform(32, MEAN, STD, random_resized_crop=random_resized_crop, jitter_scales=(40, 48),
                               rand_augment="rand-m7-n4-mstd0.5-inc1")
    for _ in range(5):
        out = transform(clip)
        assert out.shape == (3, 6, 32, 32) and out.dtype == torch.float32
        assert torch.equal(out[:, 0], out[:, 5]), "frames of one clip must get the same crop, flip, ops"


def test_flip_off_never_mirrors_and_flip_on_sometimes_does():
    frames = column_coded_frames(2, 32, 32)
    for flip, expect_mirrored in ((False, False), (True, True)):
        transform = TrainTransform(32, MEAN, STD, random_resized_crop=False, jitter_scales=(32, 32), flip=flip)
        mirrored = [unnormalize(transform(frames))[0, 0, 0, 0].item() == 31 for _ in range(30)]
        assert any(mirrored) == expect_mirrored


def test_train_transform_reads_the_config(small_cfg):
    small_cfg.AUG.ENABLE = True
    transform = TrainTransform.from_cfg(small_cfg, flip=False)
    assert transform.flip is None and transform.rand_augment.num_ops == 4
    assert transform.erase.probability == 0.25


def test_rand_augment_policy_string_is_parsed():
    assert VideoRandAugment.parse_policy("rand-m7-n4-mstd0.5-inc1") == {"m": 7.0, "n": 4, "mstd": 0.5, "inc": 1}
    with pytest.raises(ValueError, match="AUG.AA_TYPE"):
        VideoRandAugment.parse_policy("autoaug-v0")
    with pytest.raises(ValueError, match="unknown setting 'w'"):
        VideoRandAugment.parse_policy("rand-m9-w3")
    with pytest.raises(ValueError, match="only inc1"):
        VideoRandAugment.parse_policy("rand-m9-inc0")


def test_rand_augment_changes_the_clip_and_keeps_uint8():
    torch.manual_seed(0)
    random.seed(0)
    clip = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    augment = VideoRandAugment("rand-m9-n3-mstd0.5")
    outputs = [augment(clip) for _ in range(5)]
    assert all(out.dtype == torch.uint8 and out.shape == clip.shape for out in outputs)
    assert any(not torch.equal(out, clip) for out in outputs)


def test_random_erasing_erases_one_box_shared_by_all_frames():
    random.seed(1)
    clip = torch.full((4, 3, 32, 32), 5.0)
    erased = RandomErasing(1.0)(clip)
    changed = erased != 5.0  # [T, C, H, W]
    assert changed.any()
    assert torch.equal(changed[0], changed[3])
    rows, cols = changed[0, 0].any(dim=1), changed[0, 0].any(dim=0)
    assert changed[0, 0].sum() == rows.sum() * cols.sum(), "the erased region is one rectangle"
    assert torch.equal(RandomErasing(0.0)(clip), clip)
