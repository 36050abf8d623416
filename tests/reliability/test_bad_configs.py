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
    (["TEST.NUM_SPATIAL_CROPS", "0"], ["command line: TEST.NUM_SPATIAL_CROPS must be one of [1, 3]", "got 0"]),
    (["TEST.NUM_SPATIAL_CROPS", "2"], ["TEST.NUM_SPATIAL_CROPS must be one of [1, 3]", "got 2"]),
    # Values that used to load and then crash mid-job (or inside load_config) with a raw traceback:
    (["LOG_PERIOD", "0"], ["command line: LOG_PERIOD must be an integer, at least 1, got 0"]),
    (["DATA.TARGET_FPS", "0"], ["DATA.TARGET_FPS must be an integer, at least 1, got 0"]),
    (["HIERA.PATCH_STRIDE", "[0, 0]"], ["HIERA.PATCH_STRIDE must be [] or a list of 3 values", "got [0, 0]"]),
    (["DATA.STD", "[0, 0, 0]"], ["DATA.STD must be a list of 3 values, each a number above 0"]),
    (["DATA_LOADER.NUM_WORKERS", "-1"], ["DATA_LOADER.NUM_WORKERS must be an integer, at least 0", "got -1"]),
    (["MODEL.DROP_PATH_RATE", "2.0"], ["MODEL.DROP_PATH_RATE must be a number in [0, 1)", "got 2.0"]),
    (["HIERA.STAGES", "[1, 1]"], ["HIERA.MASK_UNIT_ATTN [True, True, False, False] needs one entry per stage"]),
    (["MODEL.MODEL_NAME", "hiera_bse_16x224"], ["MODEL.MODEL_NAME", "hiera_base_16x224"]),
    (["TRAIN.MIXED_PRECISION", "fp16"], ["fp16 needs a GPU"]),
]


@pytest.mark.parametrize("overrides,expected", BAD_OVERRIDES, ids=[o[0] + "=" + o[1] for o, _ in BAD_OVERRIDES])
def test_run_net_stops_on_a_bad_config_before_any_work(overrides, expected, tmp_path, monkeypatch, capsys):
    output_dir = tmp_path / "job"
    monkeypatch.setattr(sys, "argv", ["run_net.py", "--cfg", str(_defaults_config(tmp_path)), *TINY_OPTS,
                                      "OUTPUT_DIR", str(output_dir), *overrides])
    message = _run_net_error(capsys)
    for words in expected:
        assert words in message
    assert not output_dir.exists()  # nothing was started


def test_a_bad_key_in_a_config_file_names_the_file_and_line(tmp_path, monkeypatch, capsys):
    config = tmp_path / "job.yaml"
    config.write_text("DATA:\n  NUM_FRAMES: 8\n  TRAIN_CROP_SIZ: 64\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["run_net.py", "--cfg", str(config), "OUTPUT_DIR", str(tmp_path / "job")])
    message = _run_net_error(capsys)
    assert f"{config}, line 3" in message and "DATA.TRAIN_CROP_SIZE" in message
    assert not (tmp_path / "job").exists()


def _run_net_error(capsys) -> str:
    """Run tools/run_net.py with the patched ``sys.argv``; it must exit 1 with one ``error:`` line: return it."""
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(RUN_NET), run_name="__main__")
    assert stopped.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _defaults_config(folder: Path) -> Path:
    """A YAML config of the defaults (``{}``), for jobs set entirely by overrides."""
    path = folder / "defaults.yaml"
    path.write_text("{}\n", encoding="utf-8")
    return path
