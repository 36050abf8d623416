"""The test-view pipeline: the views of a video that multi-view testing and predict both feed the model.

A video gives ``temporal x spatial`` views (``TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS``, 5x3 for
Kinetics), ordered temporal-major:

1. frame indices: ``temporal`` uniform clips over the whole video (PySlowFast's test clips,
   :func:`~hiera_video.datasets.sampling.uniform_clip_indices`; a variable-frame-rate video takes the frame on
   screen at each clip time), or SSv2's segments (one frame from each; several clips take different places in them);
2. decoding scales the frames down to the short side the crops need
   (:func:`~hiera_video.datasets.transforms.evaluation_short_side`), so all views of an HD video fit in
   memory; ``DATA.REVERSE_INPUT_CHANNEL`` then turns RGB into BGR;
3. :func:`~hiera_video.datasets.transforms.spatial_views`: ``spatial`` square crops per clip, normalized
   with ``DATA.MEAN`` / ``DATA.STD``, written into one preallocated tensor.

The datasets' test mode (:meth:`VideoClipDataset.load_test_views`) and
:class:`hiera_video.inference.VideoClassifier` both use :class:`MultiViewPipeline`, so a prediction
reproduces the scores of ``tools/run_net.py`` testing exactly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
from fvcore.common.config import CfgNode

from hiera_video.datasets.decoding import VideoReader
from hiera_video.datasets.sampling import frames_on_screen, segment_indices, uniform_clip_indices
from hiera_video.datasets.transforms import evaluation_short_side, spatial_views


@dataclass(frozen=True)
class ClipSampling:
    """How one clip samples frames: ``num_frames`` every ``sampling_rate`` frames at ``target_fps``, or
    (``segments``, SSv2) one frame from the middle of each of ``num_frames`` segments of the video."""

    num_frames: int
    sampling_rate: int
    target_fps: float
    use_offset_sampling: bool = True
    segments: bool = False

    @classmethod
    def from_cfg(cls, cfg: CfgNode, segments: Optional[bool] = None) -> "ClipSampling":
        """From ``DATA.NUM_FRAMES / SAMPLING_RATE / TARGET_FPS / USE_OFFSET_SAMPLING``; ``segments``
        defaults to ``TEST.DATASET == "ssv2"``."""
        data = cfg.DATA
        segments = cfg.TEST.DATASET == "ssv2" if segments is None else segments
        return cls(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS, data.USE_OFFSET_SAMPLING, segments)


@dataclass(frozen=True)
class MultiViewPipeline:
    """Decoded video -> its ``temporal x spatial`` normalized test views (see the module docstring)."""

    sampling: ClipSampling
    crop_size: int  # DATA.TEST_CROP_SIZE
    short_side_one_crop: int  # DATA.TRAIN_JITTER_SCALES[0]: the short side a single centre crop is cut from
    mean: tuple
    std: tuple
    reverse_channels: bool = False  # DATA.REVERSE_INPUT_CHANNEL: feed BGR
    temporal: int = 1  # clips per video (TEST.NUM_ENSEMBLE_VIEWS)
    spatial: int = 3  # crops per clip (TEST.NUM_SPATIAL_CROPS): 1 (centre) or 3

    @classmethod
    def from_cfg(cls, cfg: CfgNode, segments: Optional[bool] = None) -> "MultiViewPipeline":
        """The test views of ``cfg`` (``DATA.*``, ``TEST.NUM_ENSEMBLE_VIEWS`` x ``TEST.NUM_SPATIAL_CROPS``);
        ``segments`` as in :meth:`ClipSampling.from_cfg`."""
        data, test = cfg.DATA, cfg.TEST
        return cls(ClipSampling.from_cfg(cfg, segments), data.TEST_CROP_SIZE, data.TRAIN_JITTER_SCALES[0],
                   tuple(data.MEAN), tuple(data.STD), data.REVERSE_INPUT_CHANNEL, test.NUM_ENSEMBLE_VIEWS,
                   test.NUM_SPATIAL_CROPS)

    def with_views(self, temporal: int, spatial: int) -> "MultiViewPipeline":
        """The same pipeline with ``temporal`` clips x ``spatial`` crops."""
        return dataclasses.replace(self, temporal=temporal, spatial=spatial)

    @property
    def decode_short_side(self) -> int:
        """The short side frames are scaled down to while decoding: the one the crops are cut from."""
        return evaluation_short_side(self.crop_size, self.spatial, self.short_side_one_crop)

    def frame_indices(self, video: VideoReader) -> torch.Tensor:
        """Frame indices ``[temporal, num_frames]`` of the test clips over the whole video."""
        sampling = self.sampling
        if sampling.segments:
            return torch.stack([segment_indices(video.num_frames, sampling.num_frames, train=False, view=view,
                                                num_views=self.temporal) for view in range(self.temporal)])
        indices = uniform_clip_indices(video.num_frames, video.fps, sampling.num_frames, sampling.sampling_rate,
                                       sampling.target_fps, self.temporal, sampling.use_offset_sampling)
        return frames_on_screen(video, indices)

    def read_frames(self, video: VideoReader, indices: torch.Tensor, per_clip: bool = False) -> torch.Tensor:
        """uint8 ``[N, T, h, w, C]`` frames of clip indices ``[N, T]`` at :attr:`decode_short_side`, decoded
        in one pass (``per_clip``: one pass per clip, as PySlowFast)."""
        short_side = self.decode_short_side
        if per_clip:
            frames = torch.cat([video.get_frames(clip.tolist(), short_side) for clip in indices])
        else:
            frames = video.get_frames(indices.flatten().tolist(), short_side)
        if self.reverse_channels:
            frames = frames.flip(-1)  # RGB -> BGR, for models trained on cv2-read frames
        return frames.view(*indices.shape, *frames.shape[1:])  # [N*T, h, w, C] -> [N, T, h, w, C]

    def views(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalized crops of decoded clips: uint8 ``[N, T, h, w, C]`` -> float ``[N * spatial, C, T, crop,
        crop]``, temporal-major, built in one preallocated tensor."""
        num_clips, num_frames, _, _, channels = frames.shape
        views = torch.empty(num_clips * self.spatial, channels, num_frames, self.crop_size, self.crop_size)
        for clip, clip_views in zip(frames, views.split(self.spatial)):
            spatial_views(clip, self.crop_size, self.spatial, self.short_side_one_crop, self.mean, self.std,
                          out=clip_views)
        return views

    def load(self, video: VideoReader, per_clip: bool = False) -> torch.Tensor:
        """All ``temporal * spatial`` views of ``video``: float ``[V, C, T, crop, crop]``."""
        return self.views(self.read_frames(video, self.frame_indices(video), per_clip))
