"""Configuration: defaults, _BASE_ inheritance, command-line overrides, and errors naming the key."""
import textwrap

import pytest

from hiera_video.config import ConfigError, get_cfg, load_config, parse_args


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_defaults_keep_pyslowfast_names_and_enable_both_jobs():
    cfg = get_cfg()
    assert cfg.TRAIN.ENABLE and cfg.TEST.ENABLE
    for key in ("NUM_GPUS", "OUTPUT_DIR", "RNG_SEED", "LOG_PERIOD"):
        assert key in cfg
    assert cfg.TEST.NUM_ENSEMBLE_VIEWS == 5 and cfg.TEST.NUM_SPATIAL_CROPS == 3


def test_base_files_are_inherited_relative_to_the_child_and_overridden(tmp_path):
    (tmp_path / "base").mkdir()
    write(tmp_path / "base" / "root.yaml", """
        SOLVER:
          BASE_LR: 0.1
          MAX_EPOCH: 7
        DATA:
          MEAN: [0, 0, 1]
    """)
    child = write(tmp_path / "child.yaml", """
        _BASE_: base/root.yaml
        SOLVER:
          BASE_LR: 0.5
    """)
    cfg = load_config(child, ["SOLVER.MAX_EPOCH", "3"])
    assert cfg.SOLVER.BASE_LR == 0.5 and cfg.SOLVER.MAX_EPOCH == 3
    assert cfg.DATA.MEAN == [0.0, 0.0, 1.0] and all(isinstance(v, float) for v in cfg.DATA.MEAN)


def test_unknown_key_in_a_file_names_file_line_and_closest_key(tmp_path):
    path = write(tmp_path / "typo.yaml", """
        TRAIN:
          ENABLE: True
          BATCH_SZE: 8
    """)
    with pytest.raises(ConfigError, match=r"typo.yaml, line 4: unknown config key 'TRAIN.BATCH_SZE'.*'TRAIN.BATCH_SIZE'"):
        load_config(path)


def test_unknown_key_on_the_command_line_suggests_the_closest():
    with pytest.raises(ConfigError, match="command line: unknown config key 'SOLVER.BASE_LRR'.*'SOLVER.BASE_LR'"):
        load_config(None, ["SOLVER.BASE_LRR", "0.1"])


@pytest.mark.parametrize("key, value", [("TRAIN.BATCH_SIZE", "2.5"), ("TRAIN.ENABLE", "1"), ("DATA.MEAN", "0.5"),
                                        ("DATA.TRAIN_JITTER_SCALES", "[256, 'a']")])
def test_wrong_types_are_errors_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [key, value])


def test_command_line_values_are_literals_but_strings_stay_strings():
    cfg = load_config(None, ["OUTPUT_DIR", "123", "HIERA.STAGES", "[1, 1, 1, 1]", "SOLVER.BASE_LR", "1",
                             "TEST.ENABLE", "False"])
    assert cfg.OUTPUT_DIR == "123" and cfg.HIERA.STAGES == [1, 1, 1, 1]
    assert cfg.SOLVER.BASE_LR == 1.0 and cfg.TEST.ENABLE is False


def test_invalid_choices_and_odd_override_lists_are_explained():
    with pytest.raises(ConfigError, match="TASK must be one of"):
        load_config(None, ["TASK", "detection"])
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        load_config(None, ["TRAIN.MIXED_PRECISION", "fp16"])
    with pytest.raises(ConfigError, match="DATA.TEST_CROP_SIZE 256 differs"):
        load_config(None, ["DATA.TEST_CROP_SIZE", "256"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["TRAIN.ENABLE"])


def test_missing_base_file_is_named(tmp_path):
    path = write(tmp_path / "child.yaml", "_BASE_: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere.yaml \(named in _BASE_ of .*child.yaml\)"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_config_file_is_an_error_not_the_defaults(tmp_path, text):
    # A file cut short while another process rewrites it reads as empty; running on defaults would
    # silently change the job (the defaults enable testing, for one).
    path = write(tmp_path / "empty.yaml", text)
    with pytest.raises(ConfigError, match=r"empty.yaml: the file is empty"):
        load_config(path)
    assert load_config(write(tmp_path / "explicit.yaml", "{}\n")).TEST.ENABLE  # defaults on purpose


def test_overrides_are_accepted_trailing_and_after_opts():
    trailing = parse_args(["--cfg", "a.yaml", "NUM_GPUS", "1"])
    newer = parse_args(["--cfg", "a.yaml", "--opts", "NUM_GPUS", "1", "RNG_SEED", "3"])
    assert trailing.cfg_file == newer.cfg_file == "a.yaml"
    assert trailing.opts == ["NUM_GPUS", "1"] and newer.opts == ["NUM_GPUS", "1", "RNG_SEED", "3"]
    assert parse_args(["--demo"]).demo


@pytest.mark.parametrize("key,advice", [
    ("SOLVER.BASE_LR_SCALE_NUM_SHARDS", "SOLVER.BASE_LR_SCALE_BATCH"),
    ("NUM_SHARDS", "--nnodes"),
    ("AUG.INTERPOLATION", "delete the key"),
    ("AUG.COLOR_JITTER", "AUG.AA_TYPE"),
    ("DATA.INPUT_CHANNEL_NUM", "delete the key"),
])
def test_removed_keys_say_what_to_do_instead(key, advice, tmp_path):
    group, _, leaf = key.rpartition(".")
    text = f"{group}:\n  {leaf}: 1\n" if group else f"{leaf}: 1\n"
    path = write(tmp_path / "old.yaml", "TASK: classification\n" + text)
    line = 3 if group else 2
    with pytest.raises(ConfigError, match=f"line {line}: config key '{key}' was removed") as error:
        load_config(path)
    assert advice in str(error.value)
    with pytest.raises(ConfigError, match="was removed"):
        load_config(None, [key, "1"])


def test_the_lr_scales_with_the_batch_only_when_asked():
    from hiera_video.engine.optim import base_learning_rate

    cfg = load_config(None, ["SOLVER.BASE_LR", "0.001", "TRAIN.BATCH_SIZE", "512"])
    assert base_learning_rate(cfg) == pytest.approx(0.002)
    cfg.SOLVER.BASE_LR_SCALE_BATCH = False
    assert base_learning_rate(cfg) == pytest.approx(0.001)


def test_the_command_line_documents_opts_and_debug_and_takes_debug_anywhere(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "--opts" in help_text and "--debug" in help_text and "HIERA_VIDEO_DEBUG" in help_text
    args = parse_args(["--cfg", "x.yaml", "SOLVER.MAX_EPOCH", "3", "--debug"])
    assert args.debug and args.opts == ["SOLVER.MAX_EPOCH", "3"]
    assert not parse_args(["--cfg", "x.yaml", "--opts", "A", "1"]).debug
