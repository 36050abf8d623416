"""Optimizer groups (layer-wise lr decay, no weight decay on norms / biases / position embeddings) and the
warmup + cosine schedule."""
import math

import pytest

from hiera_video.config import load_config
from hiera_video.engine.optim import WarmupCosineSchedule, base_learning_rate, build_optimizer, layer_id
from hiera_video.models import create_model


@pytest.fixture(scope="module")
def tiny_model():
    return create_model("hiera_base_16x224", input_size=(8, 64, 64), embed_dim=16, num_heads=1,
                        stages=(1, 1, 1, 1), num_classes=5)


def test_layer_ids_put_embeddings_first_and_the_head_last():
    assert layer_id("pos_embed_spatial", 4) == 0
    assert layer_id("patch_embed.proj.weight", 4) == 0
    assert layer_id("blocks.2.attn.qkv.weight", 4) == 3
    assert layer_id("head.projection.weight", 4) == 5 and layer_id("norm.weight", 4) == 5


def test_groups_decay_lr_per_layer_and_skip_weight_decay_on_1d_and_position_params(tiny_model):
    cfg = load_config(None, ["SOLVER.LAYER_DECAY", "0.5", "SOLVER.WEIGHT_DECAY", "0.05"])
    optimizer = build_optimizer(tiny_model, cfg)
    by_name = {name: group for group in optimizer.param_groups for name in group["param_names"]}
    assert by_name["head.projection.weight"]["lr_scale"] == 1.0
    assert by_name["blocks.3.attn.qkv.weight"]["lr_scale"] == 0.5
    assert by_name["pos_embed_spatial"]["lr_scale"] == 0.5**5
    assert by_name["blocks.0.attn.qkv.weight"]["weight_decay"] == 0.05
    for name in ("pos_embed_spatial", "pos_embed_temporal", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias"):
        assert by_name[name]["weight_decay"] == 0.0, name
    assert len(by_name) == sum(1 for _ in tiny_model.parameters())


def test_lr_scales_with_batch_then_warms_up_and_follows_a_cosine():
    cfg = load_config(None, ["SOLVER.BASE_LR", "1e-3", "TRAIN.BATCH_SIZE", "512", "SOLVER.WARMUP_EPOCHS", "2.0",
                             "SOLVER.WARMUP_START_LR", "0.0", "SOLVER.MAX_EPOCH", "10", "SOLVER.COSINE_END_LR", "0.0"])
    assert base_learning_rate(cfg) == pytest.approx(2e-3)
    schedule = WarmupCosineSchedule(cfg)
    assert schedule.lr_at(0.0) == 0.0
    assert schedule.lr_at(1.0) == pytest.approx(1e-3)
    assert schedule.lr_at(2.0) == pytest.approx(2e-3)
    assert schedule.lr_at(6.0) == pytest.approx(2e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert schedule.lr_at(10.0) == pytest.approx(0.0)
