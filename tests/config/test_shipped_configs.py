"""Every YAML file under configs/ loads and builds its model (on the meta device: no memory, no compute)."""
from pathlib import Path

import pytest
import torch

from hiera_video.config import load_config
from hiera_video.engine.tasks import get_task

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def test_the_benchmark_configs_are_all_shipped():
    names = {str(p.relative_to(CONFIG_DIR)) for p in CONFIGS}
    for dataset in ("K400", "K600", "K700", "SSv2"):
        for model in ("hiera_b", "hiera_b_plus", "hiera_l", "hiera_h", "mae_hiera_b", "mae_hiera_l", "mae_hiera_h"):
            assert f"{dataset}/{model}.yaml" in names
    assert {"demo/hiera_tiny.yaml", "demo/mae_hiera_tiny.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_loads_and_builds_its_model(path):
    cfg = load_config(str(path))
    with torch.device("meta"):
        model = get_task(cfg).build_model()
    assert sum(p.numel() for p in model.parameters()) > 0
    if cfg.TASK == "classification":
        assert model.head.projection.out_features == cfg.MODEL.NUM_CLASSES


@pytest.mark.parametrize("name, params", [("K400/hiera_b.yaml", 51.09e6), ("K400/hiera_h.yaml", 671.63e6)])
def test_k400_models_have_the_papers_sizes(name, params):
    with torch.device("meta"):
        model = get_task(load_config(str(CONFIG_DIR / name))).build_model()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=1e-3)


def test_ssv2_configs_follow_its_protocol():
    cfg = load_config(str(CONFIG_DIR / "SSv2" / "hiera_l.yaml"))
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS) == (1, 3)
    assert not cfg.DATA.RANDOM_FLIP and cfg.MODEL.NUM_CLASSES == 174 and cfg.TRAIN.DATASET == "ssv2"
    mae = load_config(str(CONFIG_DIR / "K400" / "mae_hiera_l.yaml"))
    assert mae.TASK == "mae" and mae.MAE.MASK_RATIO == 0.9
