"""Every key's declared range (config/ranges.py), and YAML files that must fail fast and clearly."""
import ast
import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiera_video.config import ConfigError, get_cfg, load_config
from hiera_video.config.ranges import KEY_RANGES, RAND_AUGMENT_POLICY


def flat_defaults(node=None, prefix=""):
    """{dotted key: default value} of the defaults."""
    node = get_cfg() if node is None else node
    found = {}
    for name, value in node.items():
        if isinstance(value, type(node)):
            found.update(flat_defaults(value, f"{prefix}{name}."))
        else:
            found[f"{prefix}{name}"] = value
    return found


def write(path, text):
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def yaml_of(key, text):
    """YAML setting dotted ``key`` to ``text``: the key on the second line (the first for a top-level key)."""
    group, _, leaf = key.rpartition(".")
    return f"{group}:\n  {leaf}: {text}\n" if group else f"{leaf}: {text}\n"


def test_every_key_of_the_defaults_has_a_declaration_and_every_declaration_a_key():
    assert sorted(KEY_RANGES) == sorted(flat_defaults())


@pytest.mark.parametrize("key", sorted(flat_defaults()))
def test_each_default_is_within_its_declared_range(key):
    assert KEY_RANGES[key].allows(flat_defaults()[key]), KEY_RANGES[key].explain()


# The values of the issue: each used to load and crash later (or inside load_config) without naming the key.
OUT_OF_RANGE = [
    ("LOG_PERIOD", "0", "an integer, at least 1"),
    ("DATA.TARGET_FPS", "0", "an integer, at least 1"),
    ("HIERA.PATCH_STRIDE", "[0, 0]", "[] or a list of 3 values, each an integer, at least 1"),
    ("MODEL.NUM_CLASSES", "-3", "an integer, at least 1"),
    ("DATA.MEAN", "[0.45, 0.45]", "a list of 3 values, each a number in [0, 1]"),
    ("DATA.STD", "[0.0, 0.0, 0.0]", "a list of 3 values, each a number above 0"),
    ("DATA_LOADER.NUM_WORKERS", "-1", "an integer, at least 0"),
    ("DATA.DECODE_TIMEOUT", "-5.0", "a number, at least 0 (seconds; 0 never times out)"),
    ("HIERA.STAGES", "[0, 0, 0, 0]", "a list of values, each an integer, at least 1"),
    ("MODEL.DROP_PATH_RATE", "2.0", "a number in [0, 1)"),
    ("SOLVER.BASE_LR", "-1.0", "a number above 0"),
    ("HIERA.PATCH_KERNEL", "['a', 'b', 'c']", "[] or a list of 3 values, each an integer, at least 1"),
    ("DATA.SAMPLING_RATE", "0", "an integer, at least 1"),
    ("DATA.SAMPLING_RATE", "-2", "an integer, at least 1"),
    ("SOLVER.WARMUP_EPOCHS", "-1.0", "a number, at least 0"),
    ("OUTPUT_DIR", "''", "a folder path (not empty, not an existing file)"),
    ("TEST.NUM_SPATIAL_CROPS", "2", "one of [1, 3]"),
    ("RNG_SEED", "-1", "an integer in [0, 4294967295]"),
    ("DATA.PATH_LABEL_SEPARATOR", "''", "a non-empty string"),
    ("AUG.RE_COUNT", "0", "an integer, at least 1"),
    ("AUG.AA_TYPE", "'rand-m7-q4'", "a string matching"),
    ("SOLVER.MOMENTUM", "0.0", "a number in (0, 1)"),
    ("DATA.TRAIN_JITTER_SCALES_RELATIVE", "[1.0, 0.08]", "smallest first"),
    ("AVA.TRAIN_LISTS", "[]", "a list of 1 or more values"),
    ("TRAIN.MAX_FAILED_FRACTION", "1.5", "a number in [0, 1]"),
]


@pytest.mark.parametrize("key, text, allowed", OUT_OF_RANGE, ids=[f"{k}={t}" for k, t, _ in OUT_OF_RANGE])
def test_an_out_of_range_override_names_the_key_the_value_and_what_is_allowed(key, text, allowed):
    with pytest.raises(ConfigError) as error:
        load_config(None, [key, text])
    message = str(error.value)
    assert message.startswith(f"command line: {key} must be ") and allowed in message
    assert f"got {ast.literal_eval(text)!r}" in message


@pytest.mark.parametrize("key, text, allowed", OUT_OF_RANGE, ids=[f"{k}={t}" for k, t, _ in OUT_OF_RANGE])
def test_an_out_of_range_value_in_a_file_names_the_file_and_line(key, text, allowed, tmp_path):
    path = write(tmp_path / "job.yaml", "NUM_GPUS: 0\n" + yaml_of(key, text))
    line = 3 if "." in key else 2
    with pytest.raises(ConfigError, match=rf"job.yaml, line {line}: {key} must be ") as error:
        load_config(path)
    assert allowed in str(error.value)


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("x")
    with pytest.raises(ConfigError, match=rf"command line: OUTPUT_DIR must be a folder path .*got '{existing}'"):
        load_config(None, ["OUTPUT_DIR", str(existing)])
    assert load_config(None, ["OUTPUT_DIR", str(tmp_path)]).OUTPUT_DIR == str(tmp_path)  # a folder is fine


def test_the_value_in_effect_is_checked_and_its_origin_named(tmp_path):
    write(tmp_path / "base.yaml", "SOLVER:\n  BASE_LR: -1.0\n")
    child = write(tmp_path / "child.yaml", "_BASE_: base.yaml\nTRAIN:\n  BATCH_SIZE: 8\n")
    with pytest.raises(ConfigError, match=r"base.yaml, line 2: SOLVER.BASE_LR must be a number above 0"):
        load_config(child)
    assert load_config(child, ["SOLVER.BASE_LR", "0.1"]).SOLVER.BASE_LR == 0.1  # overridden: fine


def test_a_mistyped_choice_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"TRAIN.DATASET must be one of .*got 'kinetcs'. Did you mean 'kinetics'"):
        load_config(None, ["TRAIN.DATASET", "kinetcs"])
    assert load_config(None, ["TRAIN.DATASET", "SSv2"]).TRAIN.DATASET == "SSv2"  # the reader lowercases it


def test_a_long_bad_value_is_shown_shortened():
    with pytest.raises(ConfigError) as error:
        load_config(None, ["DATA.MEAN", str([0.5] * 1000)])
    assert "DATA.MEAN must be a list of 3 values" in str(error.value) and len(str(error.value)) < 300


@pytest.mark.parametrize("opts, words", [
    (["HIERA.STAGES", "[1, 1]"], "HIERA.MASK_UNIT_ATTN [True, True, False, False] needs one entry per stage of "
                                 "HIERA.STAGES [1, 1]"),
    (["HIERA.Q_POOL", "4"], "HIERA.Q_POOL 4 must be below the number of stages (4 in HIERA.STAGES [2, 3, 16, 3])"),
    (["HIERA.EMBED_DIM", "97", "HIERA.NUM_HEADS", "2"], "HIERA.EMBED_DIM 97 must be a multiple of HIERA.NUM_HEADS 2"),
    (["HIERA.NUM_HEADS", "5"], "HIERA.EMBED_DIM 96 must be a multiple of HIERA.NUM_HEADS 5"),
    (["MAE.DECODER_EMBED_DIM", "500"], "MAE.DECODER_EMBED_DIM 500 must be a multiple of MAE.DECODER_NUM_HEADS 16"),
    (["MIXUP.ENABLE", "True", "MIXUP.ALPHA", "0.0", "MIXUP.CUTMIX_ALPHA", "0.0"],
     "MIXUP.ALPHA and MIXUP.CUTMIX_ALPHA are both 0"),
])
def test_keys_that_must_agree_are_checked_together(opts, words):
    with pytest.raises(ConfigError) as error:
        load_config(None, opts)
    assert words in str(error.value)


def test_the_hiera_checks_use_the_model_the_task_builds():
    # MAE models pool twice (q_pool 2), so three stages are enough there but not for the classifier (q_pool 3).
    three_stages = ["HIERA.STAGES", "[1, 1, 1]", "HIERA.MASK_UNIT_ATTN", "[True, True, False]"]
    assert load_config(None, ["TASK", "mae", *three_stages]).HIERA.STAGES == [1, 1, 1]
    with pytest.raises(ConfigError, match="HIERA.Q_POOL 3 must be below the number of stages"):
        load_config(None, three_stages)


@settings(max_examples=60, deadline=None)
@given(st.from_regex(RAND_AUGMENT_POLICY, fullmatch=True))
def test_every_declared_rand_augment_policy_is_one_the_transform_reads(policy):
    from hiera_video.datasets.transforms import VideoRandAugment

    if policy:
        VideoRandAugment(policy)


# 7 levels of 10 keys, each level's values aliases of the level below: 10**7 values from 710 bytes.
BILLION_LAUGHS = "a0: &a0 {" + ", ".join(f"k{j}: lol" for j in range(10)) + "}\n" + "".join(
    f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(10)) + "}\n" for i in range(1, 7)
) + "TRAIN: *a6\n"


def test_a_billion_laughs_file_is_refused_fast_naming_the_file(tmp_path):
    assert 600 < len(BILLION_LAUGHS) < 800
    path = write(tmp_path / "laughs.yaml", BILLION_LAUGHS)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"laughs.yaml, line \d: this value expands to more than 10000 YAML nodes"):
        load_config(path)
    assert time.monotonic() - started < 5  # it used to run for over a minute


def test_a_recursive_alias_is_refused(tmp_path):
    path = write(tmp_path / "loop.yaml", "DATA:\n  MEAN: &m [0.5, *m, 0.5]\n")
    with pytest.raises(ConfigError, match="loop.yaml, line 2: an alias refers to the value that contains it"):
        load_config(path)


def test_small_aliases_still_work(tmp_path):
    path = write(tmp_path / "alias.yaml", "DATA:\n  MEAN: &half [0.5, 0.5, 0.5]\n  STD: *half\n")
    assert load_config(path).DATA.STD == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("text, lines, key", [
    ("DATA:\n  NUM_FRAMES: 8\n  TRAIN_CROP_SIZE: 64\n  NUM_FRAMES: 16\n", "lines 2 and 4", "DATA.NUM_FRAMES"),
    ("TRAIN:\n  BATCH_SIZE: 8\nTEST:\n  BATCH_SIZE: 4\nTRAIN:\n  ENABLE: False\n", "lines 1 and 5", "TRAIN"),
    ("SOLVER: {BASE_LR: 0.1, BASE_LR: 0.2}\n", "lines 1 and 1", "SOLVER.BASE_LR"),
])
def test_a_key_given_twice_in_a_file_names_both_lines(text, lines, key, tmp_path):
    path = write(tmp_path / "twice.yaml", text)
    with pytest.raises(ConfigError, match=rf"twice.yaml, {lines}: key '{key}' is given twice"):
        load_config(path)


@pytest.mark.parametrize("text", ["_BASE_: 5\n", "_BASE_: [base.yaml, 3]\n", "_BASE_: {a: 1}\n"])
def test_base_must_name_files(text, tmp_path):
    path = write(tmp_path / "child.yaml", text)
    with pytest.raises(ConfigError, match=r"child.yaml, line 1: _BASE_ must be a config file path or a list"):
        load_config(path)
