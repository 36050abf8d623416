"""Test views written in place: same values as computed the plain way, and inputs left untouched."""
import torch

from hiera_video.datasets.clip_dataset import collate_test_batch
from hiera_video.datasets.transforms import normalize, spatial_views

MEAN, STD = (0.45, 0.4, 0.35), (0.225, 0.25, 0.2)


def reference_views(frames: torch.Tensor, crop: int) -> torch.Tensor:
    """Three crops along the long side of already-short frames, normalized the textbook way: [3, C, T, h, w]."""
    clip = frames.permute(3, 0, 1, 2).float()  # [T, H, W, C] -> [C, T, H, W]
    mean, std = torch.tensor(MEAN).view(3, 1, 1, 1), torch.tensor(STD).view(3, 1, 1, 1)
    width = clip.shape[-1]
    lefts = [0, (width - crop + 1) // 2, width - crop]
    return torch.stack([(clip[..., :crop, left:left + crop] / 255 - mean) / std for left in lefts])


def test_views_written_into_a_slice_match_the_textbook_formula():
    frames = torch.randint(0, 256, (4, 16, 27, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    all_views = torch.full((6, 3, 4, 16, 16), float("nan"))
    returned = spatial_views(frames, 16, 3, 16, MEAN, STD, out=all_views[3:])
    assert returned.data_ptr() == all_views[3:].data_ptr()
    torch.testing.assert_close(all_views[3:], reference_views(frames, 16))
    assert all_views[:3].isnan().all()  # nothing written outside the slice
    torch.testing.assert_close(spatial_views(frames, 16, 3, 16, MEAN, STD), reference_views(frames, 16))


def test_normalize_returns_a_new_tensor_even_for_float_input():
    clip = torch.full((2, 3, 4, 4), 255.0)
    normalized = normalize(clip, MEAN, STD)
    assert clip.eq(255.0).all()
    torch.testing.assert_close(normalized[0, :, 0, 0], (1 - torch.tensor(MEAN)) / torch.tensor(STD))


def test_one_video_batch_shares_the_views_and_several_are_stacked():
    views = [torch.randn(15, 3, 2, 4, 4) for _ in range(2)]
    single = collate_test_batch([{"views": views[0], "label": 1, "index": 0}])
    assert single.views.shape == (1, 15, 3, 2, 4, 4) and single.views.data_ptr() == views[0].data_ptr()
    double = collate_test_batch([{"views": v, "label": 1, "index": i} for i, v in enumerate(views)])
    torch.testing.assert_close(double.views, torch.stack(views))
