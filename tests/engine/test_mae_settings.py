"""The paper's MAE settings: multi-scale fusion on and off, HOG targets through the task, and every
K400 ablation row of configs/K400/ablations running a training step (tiny model, fake data)."""
from pathlib import Path

import pytest
import torch

from hiera_video.config import load_config
from hiera_video.engine import find_latest_checkpoint, run
from hiera_video.engine.tasks import get_task
from hiera_video.models import create_model
from tests.engine.fakes import TINY_OPTS, tiny_cfg

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ABLATIONS = sorted((CONFIGS / "K400" / "ablations").glob("*.yaml"))
TINY_MAE = {"input_size": (8, 64, 64), "embed_dim": 16, "num_heads": 1, "stages": (1, 1, 1, 1),
            "decoder_embed_dim": 16, "decoder_depth": 1, "decoder_num_heads": 1}


def tiny_mae(**overrides):
    """A tiny video MAE (16 mask units per clip)."""
    return create_model("mae_hiera_base_16x224", **TINY_MAE, **overrides)


def test_without_multi_scale_fusion_only_the_last_stage_reaches_the_decoder():
    torch.manual_seed(0)
    fused, last_only = tiny_mae(), tiny_mae(multi_scale_fusion=False)
    assert len(fused.multi_scale_fusion_heads) == 3 and len(last_only.multi_scale_fusion_heads) == 1
    missing, unexpected = last_only.load_state_dict(fused.state_dict(), strict=False)
    assert not missing and all(k.startswith("multi_scale_fusion_heads") for k in unexpected)
    x = torch.randn(2, 3, 8, 64, 64)
    mask = fused.get_random_mask(x, mask_ratio=0.5)
    with torch.no_grad():
        fused_pred = fused(x, mask=mask)[1]
        last_pred = last_only(x, mask=mask)[1]
        # the fused latent is the last stage plus the projected earlier stages
        stages = last_only.forward_tokens(x, mask, return_intermediates=True)[1]
        latent, _ = last_only.forward_encoder(x, 0.5, mask)
    assert fused_pred.shape == last_pred.shape and not torch.allclose(fused_pred, last_pred)
    assert torch.allclose(latent, last_only.encoder_norm(stages[-1]))


@pytest.mark.parametrize("fusion", [True, False])
def test_both_decoders_lower_the_loss_on_a_fixed_batch(fusion):
    torch.manual_seed(0)
    model = tiny_mae(multi_scale_fusion=fusion)
    x = torch.randn(2, 3, 8, 64, 64)
    mask = model.get_random_mask(x, mask_ratio=0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = model(x, mask=mask)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_the_task_builds_the_target_and_decoder_the_config_names(tmp_path):
    cfg = tiny_cfg(tmp_path, "TASK", "mae", "MAE.TARGET", "hog", "MAE.MULTI_SCALE_FUSION", "False")
    model = get_task(cfg).build_model()
    assert model.target == "hog" and model.decoder_pred.out_features == 2 * 2 * 3 * 9
    assert len(model.multi_scale_fusion_heads) == 1
    with pytest.raises(ValueError, match="predicts no pixels"):
        model.reconstruct(torch.randn(1, 3, 8, 64, 64))


def test_video_pretraining_follows_the_papers_recipe():
    cfg = load_config(str(CONFIGS / "K400" / "mae_hiera_l.yaml"))
    assert cfg.MODEL.DROP_PATH_RATE == 0.2 and cfg.SOLVER.MAX_EPOCH == 3200
    assert cfg.MAE.MULTI_SCALE_FUSION and cfg.MAE.MASK_RATIO == 0.9 and cfg.MAE.DECODER_DEPTH == 8
    for path in CONFIGS.glob("*/mae_*.yaml"):
        assert "# Schedule:" in path.read_text(), path


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_every_ablation_row_names_the_papers_number_and_trains_a_step(path, tmp_path, fake_data):
    assert "paper:" in path.read_text()
    cfg = load_config(str(path))
    assert cfg.TASK == "mae" and cfg.MODEL.MODEL_NAME == "hiera_large_16x224"
    fake_data["train_size"] = 4
    opts = [*TINY_OPTS, "MODEL.MODEL_NAME", "hiera_large_16x224", "OUTPUT_DIR", str(tmp_path), "NUM_GPUS", "0",
            "TRAIN.MIXED_PRECISION", "", "AUG.NUM_SAMPLE", "1", "SOLVER.MAX_EPOCH", "1",
            "DATA_LOADER.PIN_MEMORY", "False", "MAE.MASK_RATIO", str(min(cfg.MAE.MASK_RATIO, 0.75))]
    tiny = load_config(str(path), opts)
    assert (tiny.MAE.TARGET, tiny.MAE.MULTI_SCALE_FUSION, tiny.MODEL.DROP_PATH_RATE) == (
        cfg.MAE.TARGET, cfg.MAE.MULTI_SCALE_FUSION, cfg.MODEL.DROP_PATH_RATE)
    run(tiny)
    state = torch.load(find_latest_checkpoint(tmp_path), weights_only=True)
    assert state["epoch"] == 0 and "decoder_pred.weight" in state["model_state"]
