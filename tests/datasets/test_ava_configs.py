"""configs/AVA/*.yaml load with fvcore's CfgNode and with the toolkit's loader, and describe an AVA run."""
from pathlib import Path

import pytest

from hiera_video.config import load_config
from hiera_video.config.defaults import get_cfg

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "AVA").glob("hiera_*.yaml"))


def test_there_is_one_config_per_model_size():
    assert [path.stem for path in CONFIGS] == ["hiera_b", "hiera_h", "hiera_l"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_config_loads_and_describes_ava_detection(path):
    fvcore_cfg = get_cfg()
    fvcore_cfg.merge_from_file(str(path))
    cfg = load_config(str(path))
    for loaded in (fvcore_cfg, cfg):
        assert loaded.TASK == "ava" and loaded.TRAIN.DATASET == loaded.TEST.DATASET == "ava"
        assert loaded.MODEL.NUM_CLASSES == 80 and loaded.MODEL.LOSS_FUNC == "bce"
        assert loaded.TEST.NUM_SPATIAL_CROPS == loaded.TEST.NUM_ENSEMBLE_VIEWS == 1
        assert loaded.AVA.LABEL_MAP_FILE == "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
        assert loaded.AVA.TEST_PREDICT_BOX_LISTS == ["ava_val_predicted_boxes.csv"]
        assert loaded.MODEL.MODEL_NAME.endswith("_16x224")
