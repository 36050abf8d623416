"""Tar shards: what make_shards writes, what other tools read in them, and the dataset that reads them."""
import json
import os

import numpy as np
import pytest
import torch

from hiera_video.datasets.kinetics import KineticsDataset
from hiera_video.datasets.registry import build_dataset
from hiera_video.datasets.shards import ManifestError, make_shards, parse_size, plan_shards, read_manifest
from hiera_video.datasets.synthetic import numbered_frames, write_video
from hiera_video.datasets.list_files import read_path_label_list
from hiera_video.engine.data import seeded_generators
from hiera_video.utils import remote
from hiera_video.utils.errors import MissingInputError
from tests.loopback_http import serve_folder

CLASSES = ["abseiling", "air_drumming", "answering_questions"]


@pytest.fixture
def listed(tmp_path):
    """A PySlowFast ``train.csv`` of 5 tiny videos in class folders (one undecodable), with labels.txt."""
    lines = []
    for i in range(4):
        relative = f"{CLASSES[i % 3]}/clip_{i}.mp4"
        (tmp_path / "videos" / CLASSES[i % 3]).mkdir(parents=True, exist_ok=True)
        write_video(tmp_path / "videos" / relative, numbered_frames(20, 48, 64, seed=i), fps=30)
        lines.append(f"{relative} {i % 3}")
    (tmp_path / "videos" / "archery").mkdir()
    (tmp_path / "videos" / "archery" / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    lines.append("archery/broken.mp4 2")
    lists = tmp_path / "lists"
    lists.mkdir()
    for split in ("train", "test"):
        (lists / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (lists / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    return tmp_path


def shard(listed, split="train", **kwargs):
    """make_shards of the fixture's list of ``split`` into ``listed/shards``."""
    return make_shards(str(listed / "lists" / f"{split}.csv"), str(listed / "shards"), split,
                       str(listed / "videos"), progress=False, **kwargs)


def test_sizes_are_read_with_units():
    assert parse_size("1024") == 1024 and parse_size("500M") == 500 * 2**20 and parse_size("1GB") == 2**30


def test_plan_starts_a_new_shard_at_the_size_or_count_limit(listed):
    entries = read_path_label_list(str(listed / "lists" / "train.csv"), str(listed / "videos"))
    assert plan_shards(entries, 2**30, max_per_shard=2) == [[0, 1], [2, 3], [4]]
    assert plan_shards(entries, 1) == [[0], [1], [2], [3], [4]]  # a video larger than a shard is alone


def test_shards_hold_the_videos_unchanged_in_webdatasets_layout(listed):
    import webdataset

    manifest = shard(listed, max_per_shard=2)
    assert manifest["total"] == 5 and [s["count"] for s in manifest["shards"]] == [2, 2, 1]
    assert manifest["class_names"] == CLASSES and manifest["source"].endswith("train.csv")
    urls = [str(listed / "shards" / s["name"]) for s in manifest["shards"]]
    samples = list(webdataset.WebDataset(urls, shardshuffle=False))
    assert [s["cls"] for s in samples] == [b"0", b"1", b"2", b"0", b"2"]
    first = json.loads(samples[0]["json"])
    assert first == {"path": "abseiling/clip_0.mp4", "label": 0, "class_name": "abseiling"}
    assert samples[0]["mp4"] == (listed / "videos" / "abseiling" / "clip_0.mp4").read_bytes()


def test_a_rerun_keeps_finished_shards_and_rewrites_missing_ones(listed):
    manifest = shard(listed, max_per_shard=2)
    folder = listed / "shards"
    kept = os.stat(folder / "train-000000.tar").st_mtime_ns
    os.remove(folder / "train-000001.tar")
    (folder / "train-000002.tar").write_bytes(b"half a shard")
    assert shard(listed, max_per_shard=2) == manifest
    assert os.stat(folder / "train-000000.tar").st_mtime_ns == kept
    assert read_manifest(str(folder), "train") == manifest


def test_a_missing_manifest_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(ManifestError, match=f"{tmp_path}/val.json.*make_shards"):
        read_manifest(str(tmp_path), "val")


def shard_cfg(small_cfg, listed, data_format):
    """``small_cfg`` on the fixture's files or shards."""
    cfg = small_cfg.clone()
    cfg.DATA.FORMAT = data_format
    cfg.DATA.PATH_TO_DATA_DIR = str(listed / ("shards" if data_format == "shards" else "lists"))
    cfg.DATA.PATH_PREFIX = str(listed / "videos")
    cfg.TRAIN.MAX_FAILED_FRACTION = 0.5
    return cfg


def test_shard_items_equal_file_items(small_cfg, listed):
    shard(listed, max_per_shard=2)
    shard(listed, "test", max_per_shard=3)
    files = {split: KineticsDataset(shard_cfg(small_cfg, listed, "files"), split) for split in ("train", "test")}
    shards = {split: build_dataset(shard_cfg(small_cfg, listed, "shards"), split) for split in ("train", "test")}
    assert shards["train"].class_names == CLASSES and len(shards["test"]) == 5
    for index in range(4):
        with seeded_generators(index):
            expected = files["train"][index]
        with seeded_generators(index):
            got = shards["train"][index]
        assert torch.equal(got["clip"], expected["clip"]) and got["label"] == expected["label"]
        assert torch.equal(shards["test"][index]["views"], files["test"][index]["views"])


def test_an_undecodable_member_fails_like_a_bad_file(small_cfg, listed):
    shard(listed, "test", max_per_shard=3)
    item = build_dataset(shard_cfg(small_cfg, listed, "shards"), "test")[4]
    assert item["path"].endswith("test-000001.tar/00000004_broken.mp4") and item["views"].numel() == 0
    assert item["error"]


def test_shards_are_read_over_http(small_cfg, listed):
    shard(listed, "test", max_per_shard=3)
    local = build_dataset(shard_cfg(small_cfg, listed, "shards"), "test")
    for ranges in (True, False):  # an object store, and a server that ignores Range
        with serve_folder(listed, ranges=ranges) as (url, requested):
            cfg = shard_cfg(small_cfg, listed, "shards")
            cfg.DATA.PATH_TO_DATA_DIR = f"{url}/shards"
            over_http = build_dataset(cfg, "test")
            assert torch.equal(over_http[1]["views"], local[1]["views"])
        assert requested == ["/shards/test.json", "/shards/test-000000.tar"]


def test_ranged_reads_and_copies_of_urls(listed, tmp_path, monkeypatch):
    monkeypatch.setenv(remote.CACHE_VARIABLE, str(tmp_path / "cache"))
    data = (listed / "lists" / "labels.txt").read_bytes()
    with serve_folder(listed) as (url, _):
        assert remote.read_bytes(f"{url}/lists/labels.txt", 3, 9) == data[3:9]
        assert remote.exists(f"{url}/lists/labels.txt") and not remote.exists(f"{url}/lists/nothing.txt")
        copy = remote.local_copy(f"{url}/lists/labels.txt")
        assert copy.startswith(str(tmp_path / "cache")) and open(copy, "rb").read() == data
        with pytest.raises(MissingInputError, match=f"{url}/lists/nothing.txt: not found"):
            remote.read_bytes(f"{url}/lists/nothing.txt")


def test_an_unreachable_url_is_a_user_error_naming_it_after_its_retries():
    url = "http://127.0.0.1:9/shards/train.json"  # the discard port: nothing listens
    with pytest.raises(remote.RemoteReadError, match=f"{url}: cannot read after 2 tries"):
        remote.read_bytes(url, timeout=2, retries=1)


def test_a_missing_video_stays_listed_as_an_empty_member_that_fails_to_decode(small_cfg, listed):
    (listed / "videos" / "air_drumming" / "clip_1.mp4").unlink()
    manifest = shard(listed, "test")
    assert manifest["missing"] == ["air_drumming/clip_1.mp4"] and manifest["total"] == 5
    item = build_dataset(shard_cfg(small_cfg, listed, "shards"), "test")[1]
    assert item["views"].numel() == 0 and "empty" in item["error"]


def test_a_list_of_which_no_video_exists_is_a_user_error(listed):
    with pytest.raises(MissingInputError, match="none of the 5 videos"):
        make_shards(str(listed / "lists" / "train.csv"), str(listed / "shards"), "train", str(listed / "nowhere"))


def test_ssv2_shards_sample_segments_and_ava_has_no_shards(small_cfg, listed):
    shard(listed, "test")
    cfg = shard_cfg(small_cfg, listed, "shards")
    cfg.TEST.DATASET = "ssv2"
    assert build_dataset(cfg, "test").temporal_sampling == "segment"
    cfg.TEST.DATASET = "ava"
    with pytest.raises(ManifestError, match="not 'ava'; use DATA.FORMAT files"):
        build_dataset(cfg, "test")
