"""FeatureExtractor: one embedding per video (the head's input averaged over the test views), failures
listed, files and shards that a rerun resumes."""
import json

import numpy as np
import pytest
import torch

from hiera_video.config import load_config
from hiera_video.datasets import build_dataset
from hiera_video.datasets.synthetic import numbered_frames, write_video
from hiera_video.engine.checkpoint import save_checkpoint
from hiera_video.engine.tasks import get_task
from hiera_video.inference.features import (
    FeatureExtractor, FeatureFileError, FeatureSet, extract_to_file, extract_to_shards, index_path,
    load_feature_model, load_features, save_features, shard_path, shard_ranges, shards_of_rank,
)
from hiera_video.inference.sources import open_source
from hiera_video.models import MaskedAutoencoderHiera, create_model
from hiera_video.utils.errors import MissingInputError, UserError

# 16 channels, one block per stage, 4 frames of 32x32; 2 clips x 1 crop per video.
OPTS = ["MODEL.NUM_CLASSES", "3", "HIERA.EMBED_DIM", "16", "HIERA.NUM_HEADS", "1", "HIERA.STAGES", "[1, 1, 1, 1]",
        "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
        "DATA.TRAIN_JITTER_SCALES", "[32, 40]", "DATA.DECODE_TIMEOUT", "0.0",
        "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "1", "TEST.BATCH_SIZE", "3"]


@pytest.fixture(scope="module")
def cfg():
    return load_config(None, OPTS)


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(0)
    return get_task(cfg).build_model().eval()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two clips and a random-bytes .mp4 (a broken download)."""
    folder = tmp_path_factory.mktemp("videos")
    good = [str(write_video(folder / f"clip{i}.mp4", numbered_frames(20, 40, 48, seed=i))) for i in range(2)]
    broken = folder / "broken.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return good, str(broken)


def test_a_video_embedding_is_the_mean_of_its_views_pooled_normed_features(model, cfg, videos):
    good, _ = videos
    extractor = FeatureExtractor(model, cfg, device="cpu", per_view=True)
    result = extractor.extract(good)
    assert result.features.shape == (2, model.num_features) and result.features.dtype == np.float32
    assert result.view_features.shape == (2, 2, model.num_features)
    np.testing.assert_allclose(result.features, result.view_features.mean(axis=1), rtol=1e-5, atol=1e-6)
    with open_source(good[1]) as video:
        views = extractor.pipeline.load(video)
    with torch.no_grad():
        expected = model.norm(model.forward_tokens(views)[0].mean(dim=1)).mean(dim=0)
    np.testing.assert_allclose(result.features[1], expected.numpy(), rtol=1e-4, atol=1e-5)
    assert result.paths == good and result.labels is None and result.failed == []


def test_an_undecodable_video_is_listed_in_failed_with_its_reason_and_the_others_go_on(model, cfg, videos):
    good, broken = videos
    result = FeatureExtractor(model, cfg, device="cpu").extract([good[0], broken, good[1]])
    assert result.paths == good and len(result.features) == 2
    assert [path for path, _ in result.failed] == [broken] and result.failed[0][1]


def test_a_dataset_split_gives_its_labels(model, cfg, videos, tmp_path):
    good, broken = videos
    (tmp_path / "test.csv").write_text(f"{good[0]} 2\n{broken} 0\n{good[1]} 1\n")
    split_cfg = load_config(None, OPTS + ["DATA.PATH_TO_DATA_DIR", str(tmp_path)])
    result = FeatureExtractor(model, split_cfg, device="cpu").extract_dataset(build_dataset(split_cfg, "test", mode="test"))
    assert result.labels.tolist() == [2, 1] and result.paths == good
    assert [path for path, _ in result.failed] == [broken]


def feature_set(start, count, labels=True):
    features = np.arange(start, start + count, dtype=np.float32)[:, None].repeat(3, axis=1)
    return FeatureSet(features, [f"v{i}.mp4" for i in range(start, start + count)],
                      np.arange(start, start + count) if labels else None, failed=[("bad.mp4", "cannot open")])


def test_a_features_file_reads_back_what_was_written(tmp_path):
    written = feature_set(0, 3)
    read = load_features(save_features(written, tmp_path / "f.npz"))
    np.testing.assert_array_equal(read.features, written.features)
    assert read.paths == written.paths and read.labels.tolist() == [0, 1, 2]
    assert read.failed == [("bad.mp4", "cannot open")] and read.view_features is None


def test_a_missing_or_foreign_features_file_is_a_user_error(tmp_path):
    with pytest.raises(MissingInputError):
        load_features(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(FeatureFileError, match="features"):
        load_features(tmp_path / "other.npz")


def test_shards_cover_every_video_once_and_ranks_take_disjoint_shards():
    assert shard_ranges(7, 3) == [range(0, 3), range(3, 6), range(6, 7)]
    ranks = [shards_of_rank(5, rank, 2) for rank in range(2)]
    assert ranks == [[0, 2, 4], [1, 3]]
    with pytest.raises(UserError):
        shard_ranges(7, 0)


def test_a_rerun_skips_the_finished_shards(tmp_path):
    output = tmp_path / "feats.npz"
    save_features(feature_set(0, 2), shard_path(output, 0))  # what an interrupted run left
    embedded = []

    def embed(indices):
        embedded.append(list(indices))
        return feature_set(indices.start, len(indices))

    assert list(extract_to_shards(embed, 5, output, 2)) == [1, 2]
    assert embedded == [[2, 3], [4]]
    assert shard_path(output, 2).name == "feats-00002.npz"


class ListExtractor:
    """Stands in for FeatureExtractor: a path's feature is its number."""

    def extract(self, paths, workers=0, progress=False):
        numbers = [int(path[1:]) for path in paths]
        return FeatureSet(np.asarray(numbers, np.float32)[:, None], list(paths))


def test_with_a_shard_size_the_shards_and_an_index_are_kept(tmp_path):
    paths = [f"v{i}" for i in range(5)]
    result = extract_to_file(ListExtractor(), tmp_path / "f.npz", paths, shard_size=2)
    index = json.loads(index_path(tmp_path / "f.npz").read_text())
    assert index["shards"] == ["f-00000.npz", "f-00001.npz", "f-00002.npz"] and index["num_features"] == 5
    assert load_features(index_path(tmp_path / "f.npz")).paths == paths == result.paths
    assert not (tmp_path / "f.npz").exists()


def test_without_a_shard_size_one_file_is_left(tmp_path):
    paths = [f"v{i}" for i in range(5)]
    extract_to_file(ListExtractor(), tmp_path / "f.npz", paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz"]
    assert load_features(tmp_path / "f.npz").features[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_a_toolkit_checkpoint_loads_with_its_config(model, cfg, tmp_path):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = save_checkpoint(str(tmp_path), 0, model, optimizer, None, cfg.dump(), ["a", "b", "c"])
    loaded, loaded_cfg = load_feature_model(path)
    assert loaded_cfg.TASK == "classification" and loaded_cfg.DATA.NUM_FRAMES == 4
    assert torch.equal(loaded.norm.weight, model.norm.weight)


def test_a_checkpoint_without_a_head_is_an_mae_encoder(tmp_path):
    mae_cfg = load_config(None, OPTS + ["TASK", "mae", "MAE.DECODER_EMBED_DIM", "16", "MAE.DECODER_DEPTH", "1",
                                        "MAE.DECODER_NUM_HEADS", "1", "MAE.MASK_RATIO", "0.5"])
    mae = get_task(mae_cfg).build_model()
    optimizer = torch.optim.SGD(mae.parameters(), lr=0.1)
    loaded, loaded_cfg = load_feature_model(save_checkpoint(str(tmp_path), 0, mae, optimizer, None, mae_cfg.dump()))
    assert isinstance(loaded, MaskedAutoencoderHiera) and loaded_cfg.TASK == "mae"
    clips = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert loaded.forward_features(clips).shape == (1, loaded.encoder_norm.normalized_shape[0])


def test_official_weights_need_a_config_or_a_model_name(tmp_path):
    weights = create_model("hiera_base_16x224", num_classes=3, input_size=(4, 32, 32), embed_dim=16, num_heads=1,
                           stages=(1, 1, 1, 1)).state_dict()
    torch.save({"model_state": weights}, tmp_path / "official.pth")
    with pytest.raises(UserError, match="--model"):
        load_feature_model(tmp_path / "official.pth")
    loaded, _ = load_feature_model(tmp_path / "official.pth", model_name="hiera_base_16x224", opts=OPTS)
    assert torch.equal(loaded.head.projection.weight, weights["head.projection.weight"])


def test_each_rank_writes_its_own_shards_and_rank_0_merges_them_all(tmp_path):
    paths = [f"v{i}" for i in range(5)]
    output = tmp_path / "f.npz"
    assert extract_to_file(ListExtractor(), output, paths, shard_size=2, rank=1, world_size=2) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f-00001.npz"]
    merged = extract_to_file(ListExtractor(), output, paths, shard_size=2, rank=0, world_size=2)
    assert merged.paths == paths and index_path(output).is_file()
