"""Bad configs fail before any work starts (no output folder, no model, no data), naming the key."""
import runpy
import sys
from pathlib import Path

import pytest

from tests.engine.fakes import TINY_OPTS

RUN_NET = Path(__file__).resolve().parents[2] / "tools" / "run_net.py"

BAD_OVERRIDES = [
    # (overrides, words the error must contain)
    (["SOLVER.MAX_EPOCHS", "3"], ["unknown config key 'SOLVER.MAX_EPOCHS'", "SOLVER.MAX_EPOCH"]),
    (["TRAIN.BATCH_SIZE", "'eight'"], ["TRAIN.BATCH_SIZE", "int"]),
    (["DATA.RANDOM_RESIZED_CROP", "False", "DATA.TRAIN_CROP_SIZE", "96", "DATA.TRAIN_JITTER_SCALES", "[64, 80]"],
     ["DATA.TRAIN_CROP_SIZE 96", "DATA.TRAIN_JITTER_SCALES[0] 64"]),
    (["TASK", "ava", "DATA.TRAIN_CROP_SIZE", "96", "DATA.TRAIN_JITTER_SCALES", "[64, 80]"], ["DATA.TRAIN_CROP_SIZE"]),
    (["DATA.TRAIN_JITTER_SCALES", "[320, 256]"], ["DATA.TRAIN_JITTER_SCALES", "min <= max"]),
    (["DATA.NUM_FRAMES", "7"], ["DATA.NUM_FRAMES 7", "multiple of 2"]),
    (["HIERA.PATCH_STRIDE", "[3, 4, 4]"], ["DATA.NUM_FRAMES 8", "multiple of 3"]),
    (["DATA.TRAIN_CROP_SIZE", "48"], ["DATA.TRAIN_CROP_SIZE 48", "multiple of 32"]),
    (["TEST.NUM_ENSEMBLE_VIEWS", "0"], ["TEST.NUM_ENSEMBLE_VIEWS", "at least 1"]),
    (["TEST.NUM_SPATIAL_CROPS", "0"], ["TEST.NUM_SPATIAL_CROPS", "at least 1"]),
    (["MODEL.MODEL_NAME", "hiera_bse_16x224"], ["MODEL.MODEL_NAME", "hiera_base_16x224"]),
    (["TRAIN.MIXED_PRECISION", "fp16"], ["fp16 needs a GPU"]),
]


@pytest.mark.parametrize("overrides,expected", BAD_OVERRIDES, ids=[o[0] + "=" + o[1] for o, _ in BAD_OVERRIDES])
def test_run_net_stops_on_a_bad_config_before_any_work(overrides, expected, tmp_path, monkeypatch, capsys):
    output_dir = tmp_path / "job"
    monkeypatch.setattr(sys, "argv", ["run_net.py", "--cfg", str(_defaults_config(tmp_path)), *TINY_OPTS,
                                      "OUTPUT_DIR", str(output_dir), *overrides])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(RUN_NET), run_name="__main__")
    message = str(stopped.value.code)
    assert message.startswith("error: config:")
    for words in expected:
        assert words in message
    assert not output_dir.exists()  # nothing was started


def test_a_bad_key_in_a_config_file_names_the_file_and_line(tmp_path, monkeypatch):
    config = tmp_path / "job.yaml"
    config.write_text("DATA:\n  NUM_FRAMES: 8\n  TRAIN_CROP_SIZ: 64\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["run_net.py", "--cfg", str(config), "OUTPUT_DIR", str(tmp_path / "job")])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(RUN_NET), run_name="__main__")
    assert f"{config}, line 3" in str(stopped.value.code) and "DATA.TRAIN_CROP_SIZE" in str(stopped.value.code)
    assert not (tmp_path / "job").exists()


def _defaults_config(folder: Path) -> Path:
    """A YAML config of the defaults (``{}``), for jobs set entirely by overrides."""
    path = folder / "defaults.yaml"
    path.write_text("{}\n", encoding="utf-8")
    return path
