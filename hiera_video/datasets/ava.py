"""AVA v2.2 action detection: keyframes, person boxes and clips around each keyframe.

Timing (PySlowFast): the 15-minute videos cover seconds 900-1800 of each movie at 30 fps, frame 0 is
second 900, keyframes are seconds 902..1798, the keyframe of second ``s`` is frame ``(s - 900) * 30`` and a
clip of T frames at stride tau is ``range(c - T * tau / 2, c + T * tau / 2, tau)`` clamped to the video.

Two frame sources give the same clip for the same keyframe:

- extracted frames (``AVA.FRAME_DIR`` + ``AVA.FRAME_LIST_DIR/{train,val}.csv``, PySlowFast's 30 fps JPEGs);
- the trimmed videos themselves (``AVA.VIDEO_DIR/<video_id>.{mp4,mkv,webm}``), decoding only the frames
  of each clip (seek to the keyframe before the clip, decode forward). Frame ``i`` of the 30 fps grid is
  the frame on screen at ``i / 30`` seconds, so videos at another or a variable frame rate match what
  ``ffmpeg -r 30`` extraction gives.

Boxes: training uses the ground-truth boxes (``AVA.TRAIN_GT_BOX_LISTS``, plus the predicted boxes of
``AVA.TRAIN_PREDICT_BOX_LISTS`` scoring at least ``AVA.DETECTION_SCORE_THRESH``, with their labels if the
file has any, else as negatives); testing uses the detector boxes of ``AVA.TEST_PREDICT_BOX_LISTS`` scoring
at least the threshold.
Rows with the same keyframe and box are one person with several labels (an 80-dim multi-hot target,
index = id - 1).

Items: ``{"clip": float [C, T, H, W], "boxes": float [N, 4] (x1, y1, x2, y2) in clip pixels,
"original_boxes": float [N, 4] normalized as in the CSV, "labels": float [N, 80], "video_id", "timestamp",
"index"}``. A keyframe whose frames cannot be decoded is replaced by another in training (listed in
``"replaced"``; past ``TRAIN.MAX_FAILED_FRACTION`` of the videos failing, :class:`TooManyFailedVideos`
stops the run); in testing its item carries ``"error"`` and no clip, :func:`collate_ava_batch` lists it in
``AvaBatch.failed`` and the evaluator counts its ground truth as missed.
"""
from __future__ import annotations

import logging
import os
import random
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr

from hiera_video.datasets.batches import AvaBatch
from hiera_video.datasets.clip_dataset import TooManyFailedVideos, check_failed_fraction
from hiera_video.datasets.decoding import FrameListReader, VideoDecodeError, VideoReader, open_video
from hiera_video.datasets.list_files import read_frame_list
from hiera_video.datasets.transforms import normalize, resize_short_side, to_tchw
from hiera_video.evaluation.ava_annotations import AVA_NUM_ACTION_IDS, AnnotationFormatError, iter_box_rows
from hiera_video.utils.errors import MissingInputError

logger = logging.getLogger(__name__)

AVA_FPS = 30
# Second of the movie shown by frame 0 of the trimmed videos and of the extracted frames.
AVA_FIRST_SECOND = 900
AVA_KEYFRAME_SECONDS = range(902, 1799)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")
# Open videos kept per worker: consecutive keyframes of one video then skip re-indexing its packets.
_OPEN_VIDEOS = 2


@dataclass
class AvaKeyframe:
    """One keyframe with its person boxes: ``boxes`` [N, 4] normalized (x1, y1, x2, y2), ``labels`` [N, 80]."""

    video_id: str
    timestamp: int
    boxes: np.ndarray
    labels: np.ndarray


def keyframe_index(timestamp: int) -> int:
    """Frame index (30 fps grid, frame 0 = second 900) of the keyframe at ``timestamp`` seconds."""
    return (timestamp - AVA_FIRST_SECOND) * AVA_FPS


def clip_frame_indices(center: int, num_frames: int, sampling_rate: int, video_frames: int) -> list[int]:
    """``range(center - T * tau / 2, center + T * tau / 2, tau)`` clamped to ``[0, video_frames - 1]``."""
    half = num_frames * sampling_rate // 2
    return [min(max(i, 0), video_frames - 1) for i in range(center - half, center + half, sampling_rate)]


def read_keyframe_boxes(
    paths: Sequence[str],
    is_groundtruth: Sequence[bool],
    score_threshold: float,
) -> list[AvaKeyframe]:
    """Merge box CSVs into keyframes (file order of first appearance), one box per distinct coordinates.

    Every row adds its action id (when not empty) to its box's labels; predicted-box rows (column 8 =
    score) are kept when ``score >= score_threshold``, and without action id they add a box without labels
    (a negative in training). Keyframes outside seconds 902..1798 are skipped, as in PySlowFast.
    """
    merged: OrderedDict[tuple[str, int], OrderedDict[tuple, set]] = OrderedDict()
    for path, groundtruth in zip(paths, is_groundtruth):
        for row in iter_box_rows(path):
            if row.timestamp not in AVA_KEYFRAME_SECONDS:
                continue
            if not groundtruth:
                if row.last_column is None:
                    raise AnnotationFormatError(f"{path}:{row.line}: predicted boxes need a score in column 8")
                if row.last_column > 1.0:
                    raise AnnotationFormatError(
                        f"{path}:{row.line}: score {row.last_column} > 1 in a predicted-box list; is this a "
                        "ground-truth file (column 8 = person id)? Testing uses detector proposals"
                    )
                if row.last_column < score_threshold:
                    continue
            # Some proposal files mark "no label" with -1 instead of an empty column.
            action_id = None if row.action_id == -1 and not groundtruth else row.action_id
            if action_id is not None and not 1 <= action_id <= AVA_NUM_ACTION_IDS:
                raise AnnotationFormatError(
                    f"{path}:{row.line}: action_id {action_id} outside 1..{AVA_NUM_ACTION_IDS}"
                )
            people = merged.setdefault((row.video_id, row.timestamp), OrderedDict())
            labels = people.setdefault((row.x1, row.y1, row.x2, row.y2), set())
            if action_id is not None:
                labels.add(action_id)
    keyframes = []
    for (video_id, timestamp), people in merged.items():
        labels = np.zeros((len(people), AVA_NUM_ACTION_IDS), dtype=np.float32)
        for person, action_ids in enumerate(people.values()):
            labels[person, [i - 1 for i in action_ids]] = 1.0
        boxes = np.array(list(people.keys()), dtype=np.float32).reshape(-1, 4)
        keyframes.append(AvaKeyframe(video_id, timestamp, boxes, labels))
    return keyframes


class FrameSource(ABC):
    """Reads the frames of one AVA video at indices of its 30 fps grid (frame 0 = second 900)."""

    def video_ids(self) -> Optional[set[str]]:
        """Videos available (None when unknown until read)."""
        return None

    @abstractmethod
    def read(self, video_id: str, grid_indices: Sequence[int]) -> torch.Tensor:
        """uint8 [T, H, W, C] frames at ``grid_indices`` (clamped to the video); raises :class:`VideoDecodeError`."""

    @staticmethod
    def reader_indices(video: VideoReader, grid_indices: Sequence[int]) -> list[int]:
        """Reader frame indices for 30 fps grid indices: the same at 30 fps, else the frame on screen then."""
        last = video.num_frames - 1
        if video.is_constant_frame_rate and abs(video.fps - AVA_FPS) < 1e-3:
            return [min(max(i, 0), last) for i in grid_indices]
        return video.indices_at_times([max(i, 0) / AVA_FPS for i in grid_indices])


class ExtractedFrames(FrameSource):
    """PySlowFast's extracted JPEG frames: ``frame_list`` (``original_vido_id video_id frame_id path
    labels``) with paths relative to ``frame_dir``."""

    def __init__(self, frame_list: str, frame_dir: str):
        self.frames = read_frame_list(frame_list, path_prefix=frame_dir)

    def video_ids(self) -> set[str]:
        return set(self.frames)

    def read(self, video_id: str, grid_indices: Sequence[int]) -> torch.Tensor:
        if video_id not in self.frames:
            raise VideoDecodeError(video_id, "not in the frame list")
        with FrameListReader(video_id, self.frames[video_id], fps=AVA_FPS) as video:
            return video.get_frames(self.reader_indices(video, grid_indices))


class TrimmedVideos(FrameSource):
    """The 15-minute videos ``video_dir/<video_id>.<ext>`` (frame 0 = second 900), decoded clip by clip.

    Inside DataLoader workers the last few opened videos stay open, so consecutive keyframes of a video
    skip indexing it again. The main process closes each video after reading: decoder threads alive when
    the DataLoader forks its workers can deadlock them.
    """

    def __init__(self, video_dir: str, backend: str = "pyav", timeout: Optional[float] = None):
        self.video_dir, self.backend, self.timeout = video_dir, backend, timeout
        self._open: OrderedDict[str, VideoReader] = OrderedDict()

    def path(self, video_id: str) -> str:
        """The file of ``video_id`` (first existing extension of :data:`VIDEO_EXTENSIONS`)."""
        for extension in VIDEO_EXTENSIONS:
            candidate = os.path.join(self.video_dir, video_id + extension)
            if os.path.exists(candidate):
                return candidate
        raise VideoDecodeError(
            os.path.join(self.video_dir, video_id), f"no file with extension {', '.join(VIDEO_EXTENSIONS)}"
        )

    def _open_video(self, video_id: str) -> VideoReader:
        return open_video(self.path(video_id), self.backend, timeout=self.timeout)

    def _cached(self, video_id: str) -> VideoReader:
        if video_id in self._open:
            self._open.move_to_end(video_id)
            return self._open[video_id]
        video = self._open[video_id] = self._open_video(video_id)
        if len(self._open) > _OPEN_VIDEOS:
            self._open.popitem(last=False)[1].close()
        return video

    def read(self, video_id: str, grid_indices: Sequence[int]) -> torch.Tensor:
        if torch.utils.data.get_worker_info() is None:
            with self._open_video(video_id) as video:
                return video.get_frames(self.reader_indices(video, grid_indices))
        video = self._cached(video_id)
        try:
            return video.get_frames(self.reader_indices(video, grid_indices))
        except VideoDecodeError:
            self._open.pop(video_id).close()
            raise


def scale_jitter_crop_flip(
    frames: torch.Tensor, boxes: torch.Tensor, min_size: int, max_size: int, crop_size: int, flip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training view: short side ``1 / uniform(1 / max, 1 / min)``, random square crop, random flip.

    ``frames`` [T, C, H, W], ``boxes`` [N, 4] (x1, y1, x2, y2) in pixels; boxes follow every step and are
    clipped to the crop.
    """
    size = int(round(1.0 / random.uniform(1.0 / max_size, 1.0 / min_size)))
    frames, boxes = resize_with_boxes(frames, boxes, max(size, crop_size))
    height, width = frames.shape[-2:]
    top, left = random.randint(0, height - crop_size), random.randint(0, width - crop_size)
    frames, boxes = crop_with_boxes(frames, boxes, top, left, crop_size)
    if flip and random.random() < 0.5:
        frames = frames.flip(-1)
        boxes = torch.stack([crop_size - boxes[:, 2], boxes[:, 1], crop_size - boxes[:, 0], boxes[:, 3]], dim=1)
    return frames, boxes


def resize_with_boxes(frames: torch.Tensor, boxes: torch.Tensor, short_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize [T, C, H, W] to ``short_side`` and scale pixel boxes [N, 4] with it."""
    height, width = frames.shape[-2:]
    frames = resize_short_side(frames, short_side)
    new_height, new_width = frames.shape[-2:]
    scale = torch.tensor([new_width / width, new_height / height] * 2, dtype=boxes.dtype)
    return frames, boxes * scale


def crop_with_boxes(
    frames: torch.Tensor, boxes: torch.Tensor, top: int, left: int, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Square crop of [T, C, H, W] at (top, left); pixel boxes shifted and clipped to the crop."""
    frames = frames[..., top : top + size, left : left + size]
    boxes = (boxes - torch.tensor([left, top, left, top], dtype=boxes.dtype)).clamp(0, size)
    return frames, boxes


def jitter_boxes(boxes: torch.Tensor, fraction: float, size: int) -> torch.Tensor:
    """Move each coordinate by up to ``fraction`` of its box's width / height (uniform), clipped to the frame."""
    if fraction <= 0:
        return boxes
    extent = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, dim=1)
    jittered = boxes + (torch.rand_like(boxes) * 2 - 1) * fraction * extent
    return torch.stack(
        [jittered[:, [0, 2]].min(1).values, jittered[:, [1, 3]].min(1).values,
         jittered[:, [0, 2]].max(1).values, jittered[:, [1, 3]].max(1).values], dim=1
    ).clamp(0, size)


class AvaDataset(torch.utils.data.Dataset):
    """AVA keyframes of ``split`` ("train" or "val"/"test") with clips from frames or trimmed videos.

    Args:
        cfg: the config (``AVA.*``, ``DATA.*``, ``TRAIN.MAX_FAILED_FRACTION``).
        split: "train" reads the training lists; "val" / "test" the test lists.
        mode: "train" (ground-truth boxes, scale jitter, crop, flip) or "test" (detector boxes, short
            side ``DATA.TEST_CROP_SIZE`` and a centre crop); default from ``split``.
        frame_source: overrides the source chosen from ``AVA.VIDEO_DIR`` / ``AVA.FRAME_LIST_DIR``.
    """

    def __init__(self, cfg, split: str, mode: Optional[str] = None, frame_source: Optional[FrameSource] = None):
        self.cfg, self.split = cfg, split
        self.mode = mode or ("train" if split == "train" else "test")
        if self.mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {self.mode!r}")
        if cfg.AVA.TRAIN_USE_COLOR_AUGMENTATION:
            raise ValueError("AVA.TRAIN_USE_COLOR_AUGMENTATION is not implemented; set it to False")
        self.frame_source = frame_source or self._default_frame_source()
        self.missing_videos: list[str] = []
        self.keyframes = self._load_keyframes()
        self.video_ids = sorted({frame.video_id for frame in self.keyframes})
        self.failures: dict[str, str] = {}

    def _default_frame_source(self) -> FrameSource:
        ava = self.cfg.AVA
        if ava.VIDEO_DIR:
            return TrimmedVideos(ava.VIDEO_DIR, self.cfg.DATA.DECODING_BACKEND, self.cfg.DATA.DECODE_TIMEOUT or None)
        if not ava.FRAME_LIST_DIR:
            raise ValueError(
                "AVA needs frames: set AVA.VIDEO_DIR (trimmed videos) or AVA.FRAME_DIR and AVA.FRAME_LIST_DIR"
            )
        lists = ava.TRAIN_LISTS if self.split == "train" else ava.TEST_LISTS
        if len(lists) != 1:
            raise ValueError(f"one frame list per split is supported, got {lists}")
        return ExtractedFrames(os.path.join(ava.FRAME_LIST_DIR, lists[0]), ava.FRAME_DIR)

    def _load_keyframes(self) -> list[AvaKeyframe]:
        ava = self.cfg.AVA
        if self.mode == "train":
            groundtruth, predicted = list(ava.TRAIN_GT_BOX_LISTS), list(ava.TRAIN_PREDICT_BOX_LISTS)
        else:
            groundtruth, predicted = [], list(ava.TEST_PREDICT_BOX_LISTS)
        if self.mode == "test" and ava.GROUNDTRUTH_FILE in predicted:
            logger.warning("AVA.TEST_PREDICT_BOX_LISTS holds the ground truth %s: the mAP will be that of "
                           "ground-truth boxes, not the protocol's detector proposals", ava.GROUNDTRUTH_FILE)
        if not groundtruth + predicted:
            raise ValueError(f"no box lists for {self.mode}: set AVA.TRAIN_GT_BOX_LISTS / AVA.TEST_PREDICT_BOX_LISTS")
        paths = [os.path.join(ava.ANNOTATION_DIR, name) for name in groundtruth + predicted]
        for path in paths:
            if not g_pathmgr.exists(path):
                raise MissingInputError(f"AVA box list {path} not found (AVA.ANNOTATION_DIR + the box list name)")
        keyframes = read_keyframe_boxes(paths, [True] * len(groundtruth) + [False] * len(predicted),
                                        ava.DETECTION_SCORE_THRESH)
        available = self.frame_source.video_ids()
        if available is not None:
            missing = sorted({frame.video_id for frame in keyframes} - available)
            if missing:
                logger.warning("%d AVA videos with boxes have no frames and are skipped: %s", len(missing),
                               ", ".join(missing[:10]))
                self.missing_videos = missing
                keyframes = [frame for frame in keyframes if frame.video_id in available]
        if not keyframes:
            raise ValueError(f"no AVA keyframes with boxes and frames for split {self.split!r}")
        return keyframes

    def __len__(self) -> int:
        return len(self.keyframes)

    @property
    def num_videos(self) -> int:
        """Videos the keyframes come from (what training failures are counted against)."""
        return len(self.video_ids)

    @property
    def collate_fn(self) -> Callable[[list[dict]], AvaBatch]:
        """:func:`collate_ava_batch` (both modes)."""
        return collate_ava_batch

    def load_frames(self, index: int) -> torch.Tensor:
        """uint8 frames [T, H, W, C] of keyframe ``index``'s clip (no transform)."""
        frame = self.keyframes[index]
        data = self.cfg.DATA
        # Unclamped here: the source clamps to the video's own length.
        grid = clip_frame_indices(keyframe_index(frame.timestamp), data.NUM_FRAMES, data.SAMPLING_RATE, 1 << 30)
        return self.frame_source.read(frame.video_id, grid)

    def _transform(self, frames: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [T, H, W, C] and normalized boxes -> float clip [C, T, H, W] and pixel boxes."""
        data = self.cfg.DATA
        clip = to_tchw(frames)
        height, width = clip.shape[-2:]
        boxes = boxes * torch.tensor([width, height, width, height], dtype=torch.float32)
        if self.cfg.AVA.BGR:
            clip = clip.flip(1)  # RGB -> BGR, for models trained on cv2-read frames
        if self.mode == "train":
            clip, boxes = scale_jitter_crop_flip(clip, boxes, data.TRAIN_JITTER_SCALES[0], data.TRAIN_JITTER_SCALES[1],
                                                 data.TRAIN_CROP_SIZE, data.RANDOM_FLIP)
            boxes = jitter_boxes(boxes, self.cfg.AVA.TRAIN_BOX_JITTER, data.TRAIN_CROP_SIZE)
        else:
            size = data.TEST_CROP_SIZE
            clip, boxes = resize_with_boxes(clip, boxes, size)
            top, left = (clip.shape[-2] - size) // 2, (clip.shape[-1] - size) // 2
            clip, boxes = crop_with_boxes(clip, boxes, top, left, size)
            if self.cfg.AVA.TEST_FORCE_FLIP:
                clip = clip.flip(-1)
                boxes = torch.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], dim=1)
        clip = normalize(clip, data.MEAN, data.STD).permute(1, 0, 2, 3)  # [T, C, H, W] -> [C, T, H, W]
        return clip, boxes

    def _item(self, index: int) -> dict:
        frame = self.keyframes[index]
        clip, boxes = self._transform(self.load_frames(index), torch.from_numpy(frame.boxes))
        return {
            "clip": clip,
            "boxes": boxes,
            "original_boxes": torch.from_numpy(frame.boxes),
            "labels": torch.from_numpy(frame.labels),
            "video_id": frame.video_id,
            "timestamp": frame.timestamp,
            "index": index,
        }

    def _record_failure(self, video_id: str, reason: str) -> None:
        if video_id not in self.failures:
            logger.warning("cannot read AVA video %s: %s", video_id, reason)
        self.failures[video_id] = reason

    def __getitem__(self, index: int) -> dict:
        if self.mode == "test":
            try:
                return self._item(index)
            except VideoDecodeError as error:
                frame = self.keyframes[index]
                self._record_failure(frame.video_id, error.reason)
                return {"error": error.reason, "video_id": frame.video_id, "timestamp": frame.timestamp,
                        "index": index}
        replaced = []
        for _attempt in range(self.cfg.DATA.NUM_RETRIES + 1):
            frame = self.keyframes[index]
            if frame.video_id not in self.failures:
                try:
                    return {**self._item(index), "replaced": replaced}
                except VideoDecodeError as error:
                    self._record_failure(frame.video_id, error.reason)
                    check_failed_fraction(self.failures, len(self.video_ids), self.cfg.TRAIN.MAX_FAILED_FRACTION)
            replaced.append((frame.video_id, f"{self.failures[frame.video_id]} (keyframe {frame.timestamp:04d})"))
            index = random.randrange(len(self))
        raise TooManyFailedVideos(
            f"{len(replaced)} AVA keyframes in a row failed to decode (DATA.NUM_RETRIES={self.cfg.DATA.NUM_RETRIES}):\n"
            + "\n".join(f"  {key}: {reason}" for key, reason in replaced)
        )


def collate_ava_batch(items: list[dict]) -> AvaBatch:
    """Batch AVA items into an :class:`~hiera_video.datasets.batches.AvaBatch`: the decoded keyframes'
    clips and all their boxes; keyframes that failed to decode go to ``failed``, each decoded item's training
    replacements to ``replaced`` (one list per item)."""
    decoded = [item for item in items if "error" not in item]
    failed = [{key: item[key] for key in ("video_id", "timestamp", "error", "index")} for item in items
              if "error" in item]
    if not decoded:
        return AvaBatch(torch.empty(0), torch.zeros(0, 5), torch.zeros(0, AVA_NUM_ACTION_IDS), torch.zeros(0, 4),
                        [], [], torch.zeros(0, dtype=torch.long), failed)
    # [K, 1]: which clip of the batch each box belongs to
    batch_index = torch.cat([torch.full((len(item["boxes"]), 1), float(i)) for i, item in enumerate(decoded)])
    return AvaBatch(
        clips=torch.stack([item["clip"] for item in decoded]),
        boxes=torch.cat([batch_index, torch.cat([item["boxes"] for item in decoded])], dim=1),
        labels=torch.cat([item["labels"] for item in decoded]),
        original_boxes=torch.cat([item["original_boxes"] for item in decoded]),
        video_ids=[item["video_id"] for item in decoded for _ in range(len(item["boxes"]))],
        timestamps=[int(item["timestamp"]) for item in decoded for _ in range(len(item["boxes"]))],
        index=torch.tensor([item["index"] for item in decoded], dtype=torch.long),
        failed=failed,
        replaced=[list(item.get("replaced", [])) for item in decoded],
    )


def write_frame_list(frame_dir: str, video_ids: Sequence[str], list_path: str, extension: str = ".jpg") -> int:
    """Write a PySlowFast frame list for the frames extracted under ``frame_dir/<video_id>/`` (sorted by
    name, e.g. ``<video_id>_000001.jpg``); returns the number of frames listed.

    Columns: ``original_vido_id video_id frame_id path labels`` with paths relative to ``frame_dir`` and
    ``""`` labels, as in PySlowFast's ``frame_lists/{train,val}.csv``.
    """
    count = 0
    with g_pathmgr.open(list_path, "w") as handle:
        handle.write("original_vido_id video_id frame_id path labels\n")
        for number, video_id in enumerate(video_ids):
            names = sorted(name for name in os.listdir(os.path.join(frame_dir, video_id)) if name.endswith(extension))
            if not names:
                raise MissingInputError(f"no {extension} frames in {os.path.join(frame_dir, video_id)}")
            for frame_id, name in enumerate(names):
                handle.write(f'{video_id} {number} {frame_id} {video_id}/{name} ""\n')
            count += len(names)
    return count
