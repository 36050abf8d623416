"""The dataset shared by Kinetics and SSv2: listed videos -> decoded, sampled, transformed clips.

Item contract (what the engine relies on):

- training mode: ``{"clip": float [C, T, H, W] (or [AUG.NUM_SAMPLE, C, T, H, W]), "label": int,
  "index": int, "replaced": [(path, reason), ...]}``. ``index`` is the video actually returned; a video
  that failed to decode is logged once, counted in ``dataset.failures`` and replaced by a random other
  one (at most ``DATA.NUM_RETRIES`` tries); ``replaced`` lists the failures behind this item, so the
  engine can count failures from DataLoader workers (:class:`FailureTracker`). More than
  ``TRAIN.MAX_FAILED_FRACTION`` of the videos failing raises :class:`TooManyFailedVideos`.
- test mode: ``{"views": float [V, C, T, H, W], "label": int, "index": int}`` with ``V =
  TEST.NUM_ENSEMBLE_VIEWS * TEST.NUM_SPATIAL_CROPS`` views ordered temporal-major; the video is decoded once
  for all its views. A video that fails is not substituted: its item has ``"error": reason``, ``"path"``
  and an empty ``views`` tensor; :func:`collate_test_batch` passes it on in ``ViewBatch.failed``.

:func:`collate_train_batch` / :func:`collate_test_batch` make the batches of :mod:`batches` (the engine's
loaders use them).
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Callable, Iterable, Optional

import torch

from hiera_video.datasets.batches import ClipBatch, ViewBatch
from hiera_video.datasets.decoding import FrameListReader, VideoDecodeError, VideoReader, open_video
from hiera_video.datasets.list_files import VideoEntry
from hiera_video.datasets.remote_video import open_video_url
from hiera_video.datasets.sampling import frames_on_screen, segment_indices, train_clip_indices
from hiera_video.datasets.test_views import MultiViewPipeline
from hiera_video.datasets.transforms import TrainTransform
from hiera_video.utils import remote
from hiera_video.utils.errors import UserError

logger = logging.getLogger(__name__)

# Extensions tried when a listed file is missing (Kinetics downloaders save .mp4, .webm or .mkv).
FALLBACK_EXTENSIONS = (".mp4", ".webm", ".mkv")


class TooManyFailedVideos(UserError, RuntimeError):
    """More than ``TRAIN.MAX_FAILED_FRACTION`` of the listed videos could not be decoded."""


class FailureTracker:
    """Counts failed videos across processes from what training steps report as replaced."""

    def __init__(self, num_videos: int, max_failed_fraction: float):
        self.num_videos, self.max_failed_fraction = num_videos, max_failed_fraction
        self.failures: dict[str, str] = {}

    def update(self, replaced: Iterable[tuple[str, str]]) -> None:
        """Record ``(video, reason)`` pairs of replaced videos (each video once); raise
        :class:`TooManyFailedVideos` past the limit."""
        for path, reason in replaced:
            self.failures.setdefault(path, reason)
        check_failed_fraction(self.failures, self.num_videos, self.max_failed_fraction)

    def report(self, limit: int = 20) -> str:
        """Human-readable summary: how many failed, by reason, and the first ``limit`` paths."""
        return failure_report(self.failures, self.num_videos, limit)


def failure_report(failures: dict[str, str], num_videos: int, limit: int = 20) -> str:
    """``N of M videos failed`` plus counts per reason and the first ``limit`` paths with reasons."""
    reasons = Counter(reason.split(" (")[0] for reason in failures.values())
    lines = [f"{len(failures)} of {num_videos} videos failed to decode"]
    lines += [f"  {count} x {reason}" for reason, count in reasons.most_common()]
    lines += [f"  {path}: {reason}" for path, reason in list(failures.items())[:limit]]
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more")
    return "\n".join(lines)


def check_failed_fraction(failures: dict[str, str], num_videos: int, max_failed_fraction: float) -> None:
    """Raise :class:`TooManyFailedVideos` when ``len(failures) / num_videos > max_failed_fraction``."""
    if num_videos and len(failures) / num_videos > max_failed_fraction:
        raise TooManyFailedVideos(
            failure_report(failures, num_videos)
            + f"\nThis exceeds TRAIN.MAX_FAILED_FRACTION={max_failed_fraction}. Run tools/check_dataset.py "
            "to list bad files, fix or remove them from the list, or raise the fraction."
        )


def resolve_video_path(path: str) -> str:
    """``path`` if it exists, else the same name with another of :data:`FALLBACK_EXTENSIONS` if that exists."""
    if os.path.exists(path):
        return path
    stem, _ = os.path.splitext(path)
    for extension in FALLBACK_EXTENSIONS:
        if os.path.exists(stem + extension):
            return stem + extension
    return path


class VideoClipDataset(torch.utils.data.Dataset):
    """Listed videos -> clips (training) or decode-once multi-view stacks (testing).

    Args:
        cfg: the config (``DATA.*``, ``TEST.*``, ``AUG.*``, ``TRAIN.MAX_FAILED_FRACTION``).
        entries: the listed videos.
        class_names: names by class index.
        mode: ``"train"`` or ``"test"``.
        temporal_sampling: ``"clip"`` (PySlowFast clips at ``TARGET_FPS``) or ``"segment"`` (SSv2).
        flip: horizontal flip in training (None: ``DATA.RANDOM_FLIP``).
        decode_once: test mode decodes every frame of all views in one pass (False: once per temporal clip,
            like PySlowFast; kept for benchmarks).
    """

    def __init__(
        self,
        cfg,
        entries: list[VideoEntry],
        class_names: list[str],
        mode: str,
        temporal_sampling: str = "clip",
        flip: Optional[bool] = None,
        decode_once: bool = True,
    ):
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if temporal_sampling not in ("clip", "segment"):
            raise ValueError(f"temporal_sampling must be 'clip' or 'segment', got {temporal_sampling!r}")
        self.cfg, self.entries, self.class_names, self.mode = cfg, entries, list(class_names), mode
        self.temporal_sampling, self.decode_once = temporal_sampling, decode_once
        self.num_classes = len(self.class_names)
        self.train_transform = TrainTransform.from_cfg(cfg, flip=flip) if mode == "train" else None
        self.failures: dict[str, str] = {}
        self.num_retries = cfg.DATA.NUM_RETRIES
        self.max_failed_fraction = cfg.TRAIN.MAX_FAILED_FRACTION

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def num_videos(self) -> int:
        """Listed videos (what training failures are counted against): one item each."""
        return len(self.entries)

    @property
    def collate_fn(self) -> Callable[[list[dict]], "ClipBatch | ViewBatch"]:
        """The collate function for this dataset's mode (train or test)."""
        return collate_train_batch if self.mode == "train" else collate_test_batch

    @property
    def video_paths(self) -> list[str]:
        """Listed video paths, by index."""
        return [entry.path for entry in self.entries]

    # ---------------------------------------------------------------------------------------------------
    def open(self, entry: VideoEntry) -> VideoReader:
        """Open one listed video (frame lists are read as images, files and URLs through the configured
        backend).

        Training clips decode with FFmpeg's slice threading (``threads=1``: short runs after a seek, where
        frame threading's pipeline costs more than it gains, see ``benchmarks/decode_floor.py``); test
        views decode whole videos with frame threading."""
        if entry.frame_paths is not None:
            return FrameListReader(entry.path, entry.frame_paths, fps=self.cfg.DATA.TARGET_FPS)
        timeout = self.cfg.DATA.DECODE_TIMEOUT or None
        if remote.is_url(entry.path):
            return open_video_url(entry.path, self.cfg.DATA, timeout)
        threads = 1 if self.mode == "train" else 0
        return open_video(resolve_video_path(entry.path), self.cfg.DATA.DECODING_BACKEND, timeout=timeout,
                          threads=threads)

    def _clip_indices(self, video: VideoReader, num_clips: int) -> torch.Tensor:
        """Frame indices ``[num_clips, NUM_FRAMES]`` of random training clips (test clips: :attr:`test_views`).

        Random draws use torch's global generator, which DataLoader seeds differently in every worker."""
        data = self.cfg.DATA
        if self.temporal_sampling == "segment":
            return torch.stack([segment_indices(video.num_frames, data.NUM_FRAMES, True) for _ in range(num_clips)])
        indices = torch.stack([
            train_clip_indices(video.num_frames, video.fps, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
            for _ in range(num_clips)
        ])
        return frames_on_screen(video, indices)

    def _read_frames(self, video: VideoReader, indices: torch.Tensor) -> torch.Tensor:
        """uint8 ``[num_clips, T, H, W, C]`` for indices ``[num_clips, T]``, decoded in one pass."""
        frames = self._reverse_channels_if_asked(video.get_frames(indices.flatten().tolist()))
        return frames.view(*indices.shape, *frames.shape[1:])  # [N*T, H, W, C] -> [N, T, H, W, C]

    def _reverse_channels_if_asked(self, frames: torch.Tensor) -> torch.Tensor:
        # DATA.REVERSE_INPUT_CHANNEL feeds BGR, for models trained on cv2-read frames.
        return frames.flip(-1) if self.cfg.DATA.REVERSE_INPUT_CHANNEL else frames

    def load_train_clip(self, index: int) -> torch.Tensor:
        """Decode ``AUG.NUM_SAMPLE`` random clips of video ``index`` in one pass and augment each."""
        num_samples = max(self.cfg.AUG.NUM_SAMPLE, 1)
        with self.open(self.entries[index]) as video:
            frames = self._read_frames(video, self._clip_indices(video, num_samples))
        clips = torch.stack([self.train_transform(clip) for clip in frames])  # [N, C, T, H, W]
        return clips[0] if num_samples == 1 else clips

    @property
    def test_views(self) -> MultiViewPipeline:
        """The test-view pipeline (``TEST.NUM_ENSEMBLE_VIEWS`` x ``TEST.NUM_SPATIAL_CROPS``), shared with predict."""
        return MultiViewPipeline.from_cfg(self.cfg, segments=self.temporal_sampling == "segment")

    def load_test_views(self, index: int) -> torch.Tensor:
        """All ``V = ensemble views x spatial crops`` views of video ``index``: float ``[V, C, T, H, W]``.

        Frames are scaled down to the test short side while decoding, so the frames of all views of an HD
        video fit in memory at once."""
        with self.open(self.entries[index]) as video:
            return self.test_views.load(video, per_clip=not self.decode_once)

    # ---------------------------------------------------------------------------------------------------
    def _record_failure(self, path: str, reason: str) -> None:
        if path not in self.failures:
            logger.warning("cannot decode %s: %s", path, reason)
        self.failures[path] = reason

    def _random_index_not_failed(self, draws: int = 100) -> int:
        """A random video not known to fail (after ``draws`` unlucky draws, any video)."""
        for _ in range(draws):
            index = int(torch.randint(len(self), ()))
            if self.entries[index].path not in self.failures:
                break
        return index

    def __getitem__(self, index: int) -> dict:
        if self.mode == "test":
            return self._test_item(index)
        replaced = []
        for _attempt in range(self.num_retries + 1):
            entry = self.entries[index]
            if entry.path not in self.failures:
                try:
                    clip = self.load_train_clip(index)
                    return {"clip": clip, "label": entry.label, "index": index, "replaced": replaced}
                except VideoDecodeError as error:
                    self._record_failure(entry.path, error.reason)
                    check_failed_fraction(self.failures, len(self), self.max_failed_fraction)
            replaced.append((entry.path, self.failures[entry.path]))
            index = self._random_index_not_failed()
        raise TooManyFailedVideos(
            f"{self.num_retries + 1} videos in a row failed to decode (DATA.NUM_RETRIES={self.num_retries}):\n"
            + "\n".join(f"  {path}: {reason}" for path, reason in replaced)
        )

    def _test_item(self, index: int) -> dict:
        entry = self.entries[index]
        try:
            views = self.load_test_views(index)
        except VideoDecodeError as error:
            self._record_failure(entry.path, error.reason)
            return {"views": torch.empty(0), "label": entry.label, "index": index, "path": entry.path,
                    "error": error.reason}
        return {"views": views, "label": entry.label, "index": index}


def collate_train_batch(items: list[dict]) -> ClipBatch:
    """Stack clips ``[B, ...]``, labels and indices ``[B]``; ``replaced`` stays one list of
    ``(path, reason)`` per item."""
    return ClipBatch(
        clips=torch.stack([item["clip"] for item in items]),
        labels=torch.tensor([item["label"] for item in items]),
        index=torch.tensor([item["index"] for item in items]),
        replaced=[list(item["replaced"]) for item in items],
    )


def collate_test_batch(items: list[dict]) -> ViewBatch:
    """Stack decoded videos' views ``[B_ok, V, C, T, H, W]`` with labels / indices ``[B_ok]``.

    Failed videos go to ``failed``: a list of ``{"index", "path", "error", "label"}`` for the evaluator to
    record; ``views`` is an empty ``[0]`` tensor when every video of the batch failed.
    """
    decoded = [item for item in items if "error" not in item]
    failed = [{key: item[key] for key in ("index", "path", "error", "label")} for item in items if "error" in item]
    return ViewBatch(
        views=_stack_views([item["views"] for item in decoded]),
        labels=torch.tensor([item["label"] for item in decoded], dtype=torch.long),
        index=torch.tensor([item["index"] for item in decoded], dtype=torch.long),
        failed=failed,
    )


def _stack_views(views: list[torch.Tensor]) -> torch.Tensor:
    """``[B, V, C, T, H, W]``; one video's views are not copied (a test video's views can be 150 MB)."""
    if not views:
        return torch.empty(0)
    return views[0].unsqueeze(0) if len(views) == 1 else torch.stack(views)
