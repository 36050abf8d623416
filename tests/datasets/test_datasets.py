"""Datasets: items as the engine expects them, sampled where the formulas say, and bad videos never
crash a job nor vanish from a count."""
import json
import logging
import os
import shutil

import pytest
import torch
from PIL import Image
from torch.utils.data import DistributedSampler

from hiera_video.datasets import (
    FailureTracker,
    ListFileError,
    TooManyFailedVideos,
    build_dataset,
    collate_test_batch,
)
from hiera_video.engine.data import build_test_loader, build_train_loader
from hiera_video.engine.distributed import DistributedContext
from hiera_video.datasets import clip_dataset
from hiera_video.datasets.decoding import open_video
from hiera_video.datasets.sampling import segment_indices, uniform_clip_indices
from hiera_video.datasets.synthetic import read_frame_number
from tests.datasets.conftest import BROKEN, HEIGHT


def process(rank: int = 0, world_size: int = 1) -> DistributedContext:
    """A CPU process ``rank`` of ``world_size``, for the engine's loader builders."""
    return DistributedContext(rank=rank, world_size=world_size, local_rank=rank, device=torch.device("cpu"))


def write_list(directory, split, lines):
    with open(os.path.join(directory, f"{split}.csv"), "w") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


@pytest.fixture
def kinetics_cfg(small_cfg, videos, tmp_path):
    """PySlowFast lists over the session videos: train and val hold three good videos."""
    small_cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    small_cfg.DATA.PATH_PREFIX = os.path.dirname(videos["h264.mp4"])
    for split in ("train", "val"):
        write_list(tmp_path, split, ["h264.mp4 0", "vp9.webm 1", "short.mp4 2"])
    return small_cfg


def view_frame_numbers(view):
    """Frame numbers of an un-cropped-height view float [C, T, H, W] (normalized with 0.45 / 0.225)."""
    frames = ((view * 0.225 + 0.45) * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0)
    return [read_frame_number(frame) for frame in frames]


def test_training_items_hold_a_clip_label_and_index(kinetics_cfg):
    dataset = build_dataset(kinetics_cfg, "train")
    assert dataset.mode == "train" and len(dataset) == 3
    assert dataset.class_names == ["0", "1", "2"] and dataset.num_classes == 3
    for index in range(3):
        item = dataset[index]
        assert item["clip"].shape == (3, 8, 32, 32) and item["clip"].dtype == torch.float32
        assert (item["label"], item["index"], item["replaced"]) == (index, index, [])


@pytest.mark.parametrize("split, threads", [("train", 1), ("val", 0)])
def test_training_clips_decode_with_slice_threads_and_test_views_with_frame_threads(kinetics_cfg, monkeypatch,
                                                                                   split, threads):
    asked = []

    def recording_open_video(path, backend, timeout=None, threads=0):
        asked.append(threads)
        return open_video(path, backend, timeout=timeout, threads=threads)

    monkeypatch.setattr(clip_dataset, "open_video", recording_open_video)
    build_dataset(kinetics_cfg, split)[0]
    assert asked == [threads]


def test_repeated_augmentation_returns_several_clips_from_one_video(kinetics_cfg):
    kinetics_cfg.AUG.NUM_SAMPLE = 3
    kinetics_cfg.AUG.ENABLE = True
    clips = build_dataset(kinetics_cfg, "train")[0]["clip"]
    assert clips.shape == (3, 3, 8, 32, 32)
    assert not torch.equal(clips[0], clips[1])


def test_test_views_are_the_formula_clips_times_three_crops(kinetics_cfg):
    kinetics_cfg.DATA.TEST_CROP_SIZE = HEIGHT  # crops keep the full height, so frame numbers stay readable
    item = build_dataset(kinetics_cfg, "val")[0]
    assert item["views"].shape == (6, 3, 8, HEIGHT, HEIGHT) and item["label"] == 0
    expected = uniform_clip_indices(90, 30.0, 8, 2, 30, num_clips=2, use_offset_sampling=True)
    for view_index, view in enumerate(item["views"]):
        assert view_frame_numbers(view) == expected[view_index // 3].tolist()  # temporal-major order


def test_decoding_once_gives_the_same_views_as_decoding_per_clip(kinetics_cfg):
    once = build_dataset(kinetics_cfg, "val")
    per_clip = type(once)(kinetics_cfg, "val", decode_once=False)
    assert torch.equal(once[1]["views"], per_clip[1]["views"])


def test_variable_frame_rate_video_is_sampled_by_time(kinetics_cfg, videos, tmp_path):
    kinetics_cfg.DATA.TEST_CROP_SIZE = HEIGHT
    kinetics_cfg.TEST.NUM_SPATIAL_CROPS = 1
    kinetics_cfg.DATA.TRAIN_JITTER_SCALES = [HEIGHT, HEIGHT]
    write_list(tmp_path, "val", ["vfr.mp4 0"])
    views = build_dataset(kinetics_cfg, "val")[0]["views"]
    with open_video(videos["vfr.mp4"]) as video:
        grid = uniform_clip_indices(video.num_frames, video.fps, 8, 2, 30, num_clips=2)
        expected = [video.indices_at_times((clip.float() / video.fps).tolist()) for clip in grid]
    assert expected[0] != grid[0].tolist()  # time-based sampling differs from index-based here
    assert [view_frame_numbers(view) for view in views] == expected


def test_official_kinetics_csv_names_classes_and_finds_webm_downloads(small_cfg, videos, tmp_path):
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "zumba,aaa,10,20,train\n"
        "abseiling,bbb,0,10,train\n"
    )
    (tmp_path / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nzumba,ccc,5,15,val\n")
    shutil.copy(videos["h264.mp4"], tmp_path / "aaa_000010_000020.mp4")
    shutil.copy(videos["vp9.webm"], tmp_path / "bbb_000000_000010.webm")  # listed as .mp4, saved as .webm
    shutil.copy(videos["short.mp4"], tmp_path / "ccc_000005_000015.mp4")
    small_cfg.DATA.PATH_TO_DATA_DIR = small_cfg.DATA.PATH_PREFIX = str(tmp_path)
    with pytest.raises(ListFileError, match="train.csv: 2 classes, but MODEL.NUM_CLASSES is 3"):
        build_dataset(small_cfg, "train")  # a 3-way head would be trained on 2 classes
    small_cfg.MODEL.NUM_CLASSES = 2
    train = build_dataset(small_cfg, "train")
    assert train.class_names == ["abseiling", "zumba"] and train.num_classes == 2
    assert [train[i]["label"] for i in range(2)] == [1, 0]
    assert train.failures == {}
    val = build_dataset(small_cfg, "val")
    assert val.class_names == ["abseiling", "zumba"] and val[0]["label"] == 1 and "error" not in val[0]


@pytest.fixture
def ssv2_dir(tmp_path):
    (tmp_path / "something-something-v2-labels.json").write_text(
        json.dumps({"Pushing something from left to right": "0", "Holding something": "1"}))
    entries = [{"id": "11", "template": "Holding [something]"},
               {"id": "12", "template": "Pushing [something] from left to right"}]
    for name in ("train", "validation"):
        (tmp_path / f"something-something-v2-{name}.json").write_text(json.dumps(entries))
    return tmp_path


def test_ssv2_webm_takes_segment_middles_and_never_flips(small_cfg, videos, ssv2_dir):
    for video_id in ("11", "12"):
        shutil.copy(videos["vp9.webm"], ssv2_dir / f"{video_id}.webm")
    small_cfg.DATA.PATH_TO_DATA_DIR = small_cfg.DATA.PATH_PREFIX = str(ssv2_dir)
    small_cfg.TRAIN.DATASET = small_cfg.TEST.DATASET = "ssv2"
    small_cfg.DATA.TEST_CROP_SIZE, small_cfg.TEST.NUM_ENSEMBLE_VIEWS = HEIGHT, 1
    train = build_dataset(small_cfg, "train")
    assert train.class_names[1] == "Holding something" and train[0]["label"] == 1
    assert train.train_transform.flip is None
    views = build_dataset(small_cfg, "val")[1]["views"]
    assert views.shape == (3, 3, 8, HEIGHT, HEIGHT)
    assert view_frame_numbers(views[0]) == segment_indices(60, 8, train=False).tolist()


def test_ssv2_frame_lists_read_rgb_jpegs_and_report_videos_without_frames(small_cfg, ssv2_dir):
    red = Image.new("RGB", (64, HEIGHT), (250, 0, 0))
    lines = ["original_vido_id video_id frame_id path labels"]
    os.makedirs(ssv2_dir / "frames" / "11")
    for frame in range(12):
        red.save(ssv2_dir / "frames" / "11" / f"{frame:06d}.jpg")
        lines.append(f"11 0 {frame} 11/{frame:06d}.jpg \"\"")
    (ssv2_dir / "val.csv").write_text("\n".join(lines) + "\n")
    small_cfg.DATA.PATH_TO_DATA_DIR, small_cfg.DATA.PATH_PREFIX = str(ssv2_dir), str(ssv2_dir / "frames")
    small_cfg.TEST.DATASET, small_cfg.TEST.NUM_ENSEMBLE_VIEWS = "ssv2", 1
    dataset = build_dataset(small_cfg, "val")
    view = dataset[0]["views"][0]  # [C, T, H, W], normalized
    assert view[0].mean() > 1.5 and view[2].mean() < -1.5, "red stays in channel 0 (RGB)"
    assert dataset[1]["error"] == "no frames listed"
    small_cfg.DATA.REVERSE_INPUT_CHANNEL = True
    assert build_dataset(small_cfg, "val")[0]["views"][0][2].mean() > 1.5, "reversed: red in channel 2 (BGR)"


# ----------------------------------------------------------------------------------------------------------
# Bad data
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def broken_list_cfg(small_cfg, videos, tmp_path):
    """A train / val list with two good videos and every kind of broken one."""
    small_cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    small_cfg.DATA.PATH_PREFIX = os.path.dirname(videos["h264.mp4"])
    lines = ["h264.mp4 0", "truncated.webm 1"] + [f"{name} {i % 3}" for i, name in enumerate(BROKEN)]
    for split in ("train", "val"):
        write_list(tmp_path, split, lines)
    small_cfg.TRAIN.MAX_FAILED_FRACTION = 1.0
    return small_cfg


def test_training_replaces_broken_videos_counts_them_and_logs_each_once(broken_list_cfg, caplog):
    dataset = build_dataset(broken_list_cfg, "train")
    with caplog.at_level(logging.WARNING):
        items = [dataset[i] for _ in range(2) for i in range(len(dataset))]
    good = {dataset.entries[0].path, dataset.entries[1].path}
    assert all(item["clip"].shape == (3, 8, 32, 32) for item in items)
    assert all(dataset.entries[item["index"]].path in good for item in items)
    broken_paths = {entry.path for entry in dataset.entries} - good
    assert set(dataset.failures) == broken_paths
    replaced = [pair for item in items for pair in item["replaced"]]
    assert {path for path, _ in replaced} == broken_paths
    for path in broken_paths:
        assert sum(path in record.getMessage() for record in caplog.records) == 1


def test_training_stops_with_a_report_past_the_failed_fraction(broken_list_cfg):
    broken_list_cfg.TRAIN.MAX_FAILED_FRACTION = 0.2
    dataset = build_dataset(broken_list_cfg, "train")
    with pytest.raises(TooManyFailedVideos, match="(?s)of 8 videos failed.*TRAIN.MAX_FAILED_FRACTION=0.2"):
        for index in range(len(dataset)):
            dataset[index]


def test_training_retries_are_bounded(broken_list_cfg, videos, tmp_path):
    write_list(tmp_path, "train", ["corrupt.mp4 0", "empty.mp4 1"])
    broken_list_cfg.DATA.NUM_RETRIES = 3
    with pytest.raises(TooManyFailedVideos, match="4 videos in a row failed.*DATA.NUM_RETRIES=3"):
        build_dataset(broken_list_cfg, "train")[0]


def test_failure_tracker_gathers_replaced_videos_from_batches(broken_list_cfg):
    broken_list_cfg.TRAIN.BATCH_SIZE = 2
    loader = build_train_loader(broken_list_cfg, process())
    tracker = FailureTracker(len(loader.dataset), max_failed_fraction=1.0)
    for batch in loader:
        assert batch.clips.shape == (2, 3, 8, 32, 32) and len(batch.replaced) == 2
        tracker.update(batch.replaced_videos())
    assert set(tracker.failures) <= set(loader.dataset.failures)
    assert "videos failed to decode" in tracker.report()
    strict = FailureTracker(len(loader.dataset), max_failed_fraction=0.0)
    with pytest.raises(TooManyFailedVideos):
        strict.update([("a.mp4", "cannot open")])


def test_testing_records_failures_without_substitutes(broken_list_cfg):
    dataset = build_dataset(broken_list_cfg, "val")
    batch = collate_test_batch([dataset[i] for i in range(len(dataset))])
    assert batch.views.shape == (2, 6, 3, 8, 32, 32)
    assert batch.index.tolist() == [0, 1] and batch.labels.tolist() == [0, 1]
    failed = {failure["path"]: failure["error"] for failure in batch.failed}
    assert len(failed) == len(BROKEN) and len(batch.index) + len(failed) == len(dataset)
    assert sorted(failure["index"] for failure in batch.failed) == list(range(2, len(dataset)))
    assert "no video stream" in failed[dataset.entries[2].path]
    assert "file not found" in failed[dataset.entries[7].path]


def test_test_loader_workers_time_out_on_a_stalled_video(small_cfg, videos, tmp_path):
    small_cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    small_cfg.DATA.PATH_PREFIX = os.path.dirname(videos["h264.mp4"])
    write_list(tmp_path, "val", ["h264.mp4 0", "stalled_fifo.mp4 1", "corrupt.mp4 2"])
    small_cfg.DATA.DECODE_TIMEOUT, small_cfg.DATA_LOADER.NUM_WORKERS = 2.0, 1
    batches = list(build_test_loader(small_cfg, process(), "val"))
    decoded = [index for batch in batches for index in batch.index.tolist()]
    failed = {failure["index"]: failure["error"] for batch in batches for failure in batch.failed}
    assert decoded == [0]
    assert failed[1].startswith("timed out after 2 s") and failed[2].startswith("cannot open")


def test_loader_shards_over_processes_with_a_distributed_sampler(kinetics_cfg):
    kinetics_cfg.TRAIN.BATCH_SIZE = 2
    kinetics_cfg.TEST.BATCH_SIZE = 12  # 12 views over 2 processes: 6 views, one video of 6 views per batch
    train = build_train_loader(kinetics_cfg, process(rank=1, world_size=2))
    assert isinstance(train.sampler, DistributedSampler) and train.sampler.rank == 1 and train.batch_size == 1
    test = build_test_loader(kinetics_cfg, process(rank=0, world_size=2), "val")
    assert not test.sampler.shuffle and test.batch_size == 1
    assert [index for batch in test for index in batch.index.tolist()] == [0, 2]
    local = build_test_loader(kinetics_cfg, process(), "val")
    assert [index for batch in local for index in batch.index.tolist()] == [0, 1, 2] and local.batch_size == 2


def test_malformed_list_fails_at_construction_with_file_and_line(kinetics_cfg, tmp_path):
    write_list(tmp_path, "train", ["h264.mp4 0", "vp9.webm 7"])
    with pytest.raises(ListFileError, match=r"train.csv:2: label 7 out of range \[0, 3\)"):
        build_dataset(kinetics_cfg, "train")


def test_missing_list_file_names_the_config_key(kinetics_cfg, tmp_path):
    os.remove(tmp_path / "val.csv")
    with pytest.raises(FileNotFoundError, match="val.csv or validate.csv in DATA.PATH_TO_DATA_DIR"):
        build_dataset(kinetics_cfg, "val")


def test_unknown_dataset_name_lists_the_known_ones(kinetics_cfg):
    kinetics_cfg.TRAIN.DATASET = "ucf101"
    with pytest.raises(ValueError, match="'ava', 'imagenet', 'kinetics', 'ssv2'"):
        build_dataset(kinetics_cfg, "train")
