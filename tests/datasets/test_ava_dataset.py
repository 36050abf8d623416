"""AVA keyframes, boxes and clips from extracted frames and from trimmed videos (generated here)."""
import random

import numpy as np
import pytest
import torch
from torchvision.io import write_jpeg

from hiera_video.config.defaults import get_cfg
from hiera_video.datasets.ava import (
    AvaDataset,
    ExtractedFrames,
    TrimmedVideos,
    clip_frame_indices,
    collate_ava_batch,
    keyframe_index,
    read_keyframe_boxes,
    scale_jitter_crop_flip,
    write_frame_list,
)
from hiera_video.datasets.synthetic import numbered_frames, read_frame_number, write_video
from hiera_video.evaluation import AnnotationFormatError

NUM_FRAMES = 160  # seconds 900.0 to 905.3 at 30 fps
HEIGHT, WIDTH = 48, 64
GROUNDTRUTH = (
    "vidA,0902,0.100,0.200,0.500,0.900,12,0\n"
    "vidA,0902,0.100,0.200,0.500,0.900,80,0\n"  # same person, second action
    "vidA,0902,0.600,0.100,0.900,0.800,1,1\n"
    "vidA,0904,0.100,0.200,0.500,0.900,12,0\n"
    "vidB,0905,0.200,0.200,0.700,0.700,14,0\n"
    "vidB,0901,0.200,0.200,0.700,0.700,14,0\n"  # before the first keyframe: skipped
)
PROPOSALS = (
    "vidA,0902,0.110,0.200,0.500,0.900,,0.95\n"
    "vidA,0902,0.600,0.100,0.900,0.800,,0.50\n"  # below the 0.8 threshold
    "vidA,0904,0.100,0.210,0.500,0.900,,0.90\n"
    "vidB,0905,0.200,0.200,0.700,0.700,,0.99\n"
)


@pytest.fixture(scope="module")
def ava_root(tmp_path_factory):
    """Trimmed videos, extracted JPEG frames, a frame list and annotations for two videos."""
    root = tmp_path_factory.mktemp("ava")
    (root / "videos").mkdir()
    for seed, video_id in enumerate(("vidA", "vidB")):
        frames = numbered_frames(NUM_FRAMES, HEIGHT, WIDTH, seed=seed)
        write_video(root / "videos" / f"{video_id}.mp4", frames, fps=30, options={"crf": "10"})
        frame_dir = root / "frames" / video_id
        frame_dir.mkdir(parents=True)
        for index, frame in enumerate(frames):
            write_jpeg(frame.permute(2, 0, 1).contiguous(), str(frame_dir / f"{video_id}_{index + 1:06d}.jpg"), 95)
    (root / "frame_lists").mkdir()
    write_frame_list(str(root / "frames"), ["vidA", "vidB"], str(root / "frame_lists" / "train.csv"))
    (root / "annotations").mkdir()
    (root / "annotations" / "ava_train_v2.2.csv").write_text(GROUNDTRUTH)
    (root / "annotations" / "ava_val_predicted_boxes.csv").write_text(PROPOSALS)
    return root


def ava_cfg(root, source="frames"):
    """Tiny clips: 8 frames every 4, 64 px crops."""
    cfg = get_cfg()
    cfg.AVA.ANNOTATION_DIR = str(root / "annotations")
    cfg.AVA.FRAME_DIR = str(root / "frames")
    cfg.AVA.FRAME_LIST_DIR = str(root / "frame_lists")
    cfg.AVA.TRAIN_LISTS = ["train.csv"]
    cfg.AVA.TEST_LISTS = ["train.csv"]
    cfg.AVA.VIDEO_DIR = str(root / "videos") if source == "videos" else ""
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 4
    cfg.DATA.TRAIN_JITTER_SCALES = [64, 80]
    cfg.DATA.TRAIN_CROP_SIZE = cfg.DATA.TEST_CROP_SIZE = 64
    cfg.DATA.DECODE_TIMEOUT = 0.0
    return cfg


def test_clip_indices_center_on_the_keyframe_and_clamp():
    assert keyframe_index(902) == 60 and keyframe_index(1798) == 26940
    assert clip_frame_indices(60, 8, 4, 1000) == [44, 48, 52, 56, 60, 64, 68, 72]
    assert clip_frame_indices(10, 4, 8, 1000) == [0, 2, 10, 18]
    assert clip_frame_indices(170, 4, 8, 160) == [154, 159, 159, 159]


def test_boxes_merge_labels_per_person_and_threshold_proposals(ava_root):
    annotations = ava_root / "annotations"
    keyframes = read_keyframe_boxes(
        [str(annotations / "ava_train_v2.2.csv"), str(annotations / "ava_val_predicted_boxes.csv")],
        [True, False], score_threshold=0.8,
    )
    assert [(k.video_id, k.timestamp, len(k.boxes)) for k in keyframes] == [
        ("vidA", 902, 3), ("vidA", 904, 2), ("vidB", 905, 1)]
    first = keyframes[0]
    np.testing.assert_allclose(first.boxes[0], [0.1, 0.2, 0.5, 0.9])
    assert np.flatnonzero(first.labels[0]).tolist() == [11, 79]  # ids 12 and 80
    assert np.flatnonzero(first.labels[1]).tolist() == [0]
    assert not first.labels[2].any()  # the proposal above threshold, no label


def test_box_list_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "proposals.csv"
    bad.write_text("vidA,0902,0.1,0.2,0.5,0.9,,0.9\nvidA,0903,0.1,0.2,0.5,0.9,,\n")
    with pytest.raises(AnnotationFormatError, match="proposals.csv:2: predicted boxes need a score"):
        read_keyframe_boxes([str(bad)], [False], 0.8)
    bad.write_text("vidA,0902,0.1,0.2,0.5,0.9,12,3\n")  # a ground-truth row: column 8 is a person id
    with pytest.raises(AnnotationFormatError, match="proposals.csv:1: score 3.0 > 1 .* ground-truth file"):
        read_keyframe_boxes([str(bad)], [False], 0.8)
    bad.write_text("vidA,0902,0.1,0.2,0.5,0.9,-1,0.9\n")  # -1: a proposal without label
    assert not read_keyframe_boxes([str(bad)], [False], 0.8)[0].labels.any()
    bad.write_text("vidA,0902,0.1,0.2,0.5,0.9,81,0\n")
    with pytest.raises(AnnotationFormatError, match="proposals.csv:1: action_id 81 outside 1..80"):
        read_keyframe_boxes([str(bad)], [True], 0.8)


def test_both_frame_sources_give_the_same_clip(ava_root):
    frames = ExtractedFrames(str(ava_root / "frame_lists" / "train.csv"), str(ava_root / "frames"))
    videos = TrimmedVideos(str(ava_root / "videos"))
    for video_id, second in (("vidA", 902), ("vidA", 904), ("vidB", 905)):
        grid = clip_frame_indices(keyframe_index(second), 8, 4, 1 << 30)
        expected = [min(i, NUM_FRAMES - 1) for i in grid]
        from_frames = [read_frame_number(f) for f in frames.read(video_id, grid)]
        from_video = [read_frame_number(f) for f in videos.read(video_id, grid)]
        assert from_frames == from_video == expected


def test_videos_at_another_frame_rate_map_by_time(tmp_path):
    write_video(tmp_path / "slow.mp4", numbered_frames(80, HEIGHT, WIDTH), fps=15)
    clip = TrimmedVideos(str(tmp_path)).read("slow", [60, 61, 62, 63])
    assert [read_frame_number(f) for f in clip] == [30, 30, 31, 31]


def test_training_items_use_groundtruth_boxes_in_clip_pixels(ava_root):
    random.seed(0)
    dataset = AvaDataset(ava_cfg(ava_root), "train")
    assert len(dataset) == 3  # keyframes with ground truth
    item = dataset[0]
    assert item["clip"].shape == (3, 8, 64, 64)
    assert item["boxes"].shape == (2, 4) and item["labels"].shape == (2, 80)
    assert (item["boxes"] >= 0).all() and (item["boxes"] <= 64).all()
    assert np.flatnonzero(item["labels"][0].numpy()).tolist() == [11, 79]


def test_test_items_use_proposals_and_a_centre_crop(ava_root):
    dataset = AvaDataset(ava_cfg(ava_root), "val")
    assert [(k.video_id, k.timestamp, len(k.boxes)) for k in dataset.keyframes] == [
        ("vidA", 902, 1), ("vidA", 904, 1), ("vidB", 905, 1)]
    item = dataset[0]
    # 64x48 -> short side 64 -> 85x64 -> centre crop from x = 10; x1 = 0.11 * 85 - 10 < 0 is clipped.
    torch.testing.assert_close(item["boxes"][0], torch.tensor([0.0, 0.2 * 64, 0.5 * 85 - 10, 0.9 * 64]))
    torch.testing.assert_close(item["original_boxes"][0], torch.tensor([0.11, 0.2, 0.5, 0.9]))


def test_training_view_moves_boxes_with_the_pixels():
    random.seed(1)
    frames = torch.zeros(2, 3, 48, 64, dtype=torch.uint8)
    frames[:, :, 14:34, 24:40] = 255  # the person, inside every crop below
    boxes = torch.tensor([[24.0, 14.0, 40.0, 34.0]])
    for _ in range(8):
        clip, moved = scale_jitter_crop_flip(frames, boxes, 48, 56, 48, flip=True)
        x1, y1, x2, y2 = moved[0].round().int().tolist()
        inside = clip[0, 0, y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].float().mean()
        assert inside > 250, "the box must still cover the white person"
        assert clip[0, 0].float().sum() / 255 <= (x2 - x1 + 2) * (y2 - y1 + 2), "no white outside the box"


def test_failed_video_is_reported_not_dropped(ava_root, tmp_path):
    (tmp_path / "vidA.mp4").write_bytes((ava_root / "videos" / "vidA.mp4").read_bytes())
    dataset = AvaDataset(ava_cfg(ava_root), "val", frame_source=TrimmedVideos(str(tmp_path)))  # no vidB file
    batch = collate_ava_batch([dataset[i] for i in range(len(dataset))])
    assert batch.clips.shape == (2, 3, 8, 64, 64)
    assert batch.boxes[:, 0].tolist() == [0.0, 1.0]
    assert batch.video_ids == ["vidA", "vidA"] and batch.timestamps == [902, 904]
    assert [(f["video_id"], f["timestamp"]) for f in batch.failed] == [("vidB", 905)]
    assert "vidB" in dataset.failures


def test_training_replaces_keyframes_of_broken_videos_up_to_the_allowed_fraction(ava_root, tmp_path):
    from hiera_video.datasets.clip_dataset import TooManyFailedVideos

    (tmp_path / "vidA.mp4").write_bytes((ava_root / "videos" / "vidA.mp4").read_bytes())
    cfg = ava_cfg(ava_root)
    cfg.TRAIN.MAX_FAILED_FRACTION = 0.6  # one of two videos may fail
    dataset = AvaDataset(cfg, "train", frame_source=TrimmedVideos(str(tmp_path)))
    vid_b = next(i for i, frame in enumerate(dataset.keyframes) if frame.video_id == "vidB")
    random.seed(0)
    item = dataset[vid_b]
    assert item["video_id"] == "vidA"
    assert item["replaced"][0][0] == "vidB" and "no file" in item["replaced"][0][1]
    assert "(keyframe 0905)" in item["replaced"][0][1]
    cfg.TRAIN.MAX_FAILED_FRACTION = 0.1
    strict = AvaDataset(cfg, "train", frame_source=TrimmedVideos(str(tmp_path)))
    with pytest.raises(TooManyFailedVideos, match="MAX_FAILED_FRACTION"):
        strict[vid_b]


def test_forced_test_flip_mirrors_clip_and_boxes(ava_root):
    cfg = ava_cfg(ava_root)
    plain = AvaDataset(cfg, "val")[0]
    cfg.AVA.TEST_FORCE_FLIP = True
    flipped = AvaDataset(cfg, "val")[0]
    torch.testing.assert_close(flipped["clip"], plain["clip"].flip(-1))
    x1, y1, x2, y2 = plain["boxes"][0].tolist()
    torch.testing.assert_close(flipped["boxes"][0], torch.tensor([64 - x2, y1, 64 - x1, y2]))
    torch.testing.assert_close(flipped["original_boxes"], plain["original_boxes"])  # detections keep CSV boxes


def test_dataloader_workers_read_trimmed_videos(ava_root):
    dataset = AvaDataset(ava_cfg(ava_root, source="videos"), "val")
    dataset[0]  # opens vidA in this process: the open reader must not travel to the worker
    # forkserver: a forked worker could inherit FFmpeg threads of readers other tests left open in this process
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=1, collate_fn=dataset.collate_fn,
                                         timeout=60, multiprocessing_context="forkserver")
    batch = next(iter(loader))
    assert batch.clips.shape == (3, 3, 8, 64, 64) and not batch.failed
    torch.testing.assert_close(batch.clips[0], dataset[0]["clip"])
