"""The test-view pipeline: the test protocol's clips, decoded at the crops' short side, cropped and
normalized; the datasets' test items are exactly its views."""
import numpy as np
import torch

from hiera_video.datasets.clip_dataset import VideoClipDataset
from hiera_video.datasets.decoding import open_video
from hiera_video.datasets.list_files import VideoEntry
from hiera_video.datasets.sampling import segment_indices, uniform_clip_indices
from hiera_video.datasets.test_views import ClipSampling, MultiViewPipeline
from hiera_video.datasets.transforms import spatial_views
from hiera_video.inference.sources import ArrayVideo

MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


def pipeline(temporal=5, spatial=3, crop=32, short_side_one_crop=40, reverse_channels=False, **sampling):
    """A pipeline of 16-frame clips every 4 frames at 30 fps (or ``sampling`` overrides)."""
    clips = ClipSampling(**{"num_frames": 16, "sampling_rate": 4, "target_fps": 30, **sampling})
    return MultiViewPipeline(clips, crop, short_side_one_crop, MEAN, STD, reverse_channels, temporal, spatial)


def test_clips_are_the_test_protocol_formula_and_segment_clips_take_different_places_in_the_segments():
    video = ArrayVideo(np.zeros((300, 8, 8, 3), np.uint8), fps=30)
    assert torch.equal(pipeline().frame_indices(video), uniform_clip_indices(300, 30, 16, 4, 30, num_clips=5))
    one = pipeline(temporal=1, num_frames=4, segments=True).frame_indices(video)
    assert one.tolist() == [segment_indices(300, 4, train=False).tolist()] == [[37, 112, 187, 261]]  # middles
    two = pipeline(temporal=2, num_frames=4, segments=True).frame_indices(video)
    # Segments of 74.75 frames ([0, 75], [75, 150], ...): clips at a quarter and three quarters of each.
    assert two.tolist() == [[18, 93, 168, 242], [56, 131, 205, 280]]


def test_the_decode_short_side_is_the_crops_and_never_below_the_crop():
    assert pipeline(spatial=3).decode_short_side == 32
    assert pipeline(spatial=1).decode_short_side == 40
    assert pipeline(spatial=1, short_side_one_crop=24).decode_short_side == 32  # clamped to the crop size


def test_views_are_every_clips_normalized_crops_temporal_major():
    frames = torch.randint(0, 256, (2, 16, 48, 64, 3), dtype=torch.uint8)  # [N, T, H, W, C]
    views = pipeline(temporal=2).views(frames)
    assert views.shape == (6, 3, 16, 32, 32)
    for clip in range(2):
        torch.testing.assert_close(views[3 * clip: 3 * clip + 3], spatial_views(frames[clip], 32, 3, 40, MEAN, STD))


def test_reversed_channels_feed_bgr():
    rgb = torch.zeros(1, 40, 40, 3, dtype=torch.uint8)
    rgb[..., 0] = 255  # red
    video = ArrayVideo(rgb.numpy(), fps=30)
    frames = pipeline(spatial=1, reverse_channels=True).read_frames(video, torch.zeros(1, 1, dtype=torch.long))
    assert frames.shape == (1, 1, 40, 40, 3) and frames[..., 2].min() == 255 and frames[..., 0].max() == 0


def test_a_test_item_is_the_pipelines_views_of_the_cfg(small_cfg, videos):
    dataset = VideoClipDataset(small_cfg, [VideoEntry(videos["h264.mp4"], 0)], ["a", "b", "c"], "test")
    expected = MultiViewPipeline.from_cfg(small_cfg)
    assert dataset.test_views == expected and (expected.temporal, expected.spatial) == (2, 3)
    with open_video(videos["h264.mp4"]) as video:
        torch.testing.assert_close(dataset[0]["views"], expected.load(video), rtol=0, atol=0)
        per_clip = expected.load(video, per_clip=True)
    torch.testing.assert_close(per_clip, dataset[0]["views"], rtol=0, atol=0)
