"""Fuzz: random rows thrown at every list / annotation parser give entries or our documented errors
(ListFileError, AnnotationFormatError, each naming the file) and nothing else; config overrides and files
give a config or a ConfigError, and each key's declared values load."""
import functools
import json
import math
import os
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hiera_video.config.ranges import KEY_RANGES, Choice, Constraint, Flag, Floats, Folder, Ints, Items, Text

from hiera_video.datasets.ava import read_keyframe_boxes
from hiera_video.datasets.list_files import (
    ListFileError, dataset_class_names, kinetics_entries, read_class_names, read_frame_list,
    read_kinetics_annotations, read_path_label_list, read_ssv2_annotations,
)
from hiera_video.evaluation.ava_annotations import (
    AnnotationFormatError, iter_box_rows, read_exclusions, read_label_map,
)

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OUR_ERRORS = (ListFileError, AnnotationFormatError)

# Fields a real file might hold, plus the ways they go wrong.
fields = st.one_of(
    st.integers(-5, 1000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "-1", "0", "1", "80", "81", "1e9", "0.5", "abc", "a b", '"q,uoted"', "é",
                     "\ufeff", "902", "1798", "x" * 300, "1_0", "+3", "０"]),
    st.text(max_size=12),
)
rows = st.lists(st.lists(fields, min_size=0, max_size=9), min_size=0, max_size=8)
junk_bytes = st.one_of(st.just(b""), st.binary(max_size=40), st.sampled_from([b"\xff\xfe", b"\x00", b"\xc3("]))


def write_rows(folder: str, name: str, table: list[list[str]], separator: str, tail: bytes) -> str:
    """Write ``table`` joined by ``separator`` (UTF-8), then raw ``tail`` bytes; return the path."""
    path = os.path.join(folder, name)
    text = "\n".join(separator.join(row) for row in table)
    with open(path, "wb") as handle:
        handle.write(text.encode("utf-8", "surrogatepass") + tail)
    return path


def assert_only_our_errors(parse, path: str):
    """Run ``parse()``; a failure must be one of our errors and name ``path``. Returns the result or None."""
    try:
        return parse()
    except OUR_ERRORS as error:
        assert os.path.basename(path) in str(error), f"error does not name the file: {error}"
        return None


@FUZZ
@given(rows, junk_bytes, st.sampled_from([" ", ",", "\t"]), st.sampled_from([None, 3, 400]))
def test_path_label_lists(table, tail, separator, num_classes):
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(folder, "train.csv", table, separator, tail)
        entries = assert_only_our_errors(lambda: read_path_label_list(path, "/data", separator, num_classes), path)
        for entry in entries or []:
            assert entry.label >= 0 and (num_classes is None or entry.label < num_classes)


@FUZZ
@given(rows, junk_bytes, st.booleans())
def test_official_kinetics_csvs(table, tail, with_header):
    header = [["label", "youtube_id", "time_start", "time_end", "split"]] if with_header else []
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(folder, "train.csv", header + table, ",", tail)

        def parse():
            annotations = read_kinetics_annotations(path)
            names = sorted({row["label"] for row in annotations})
            return kinetics_entries(annotations, names, path, "/data", "{youtube_id}_{time_start:06d}.mp4")

        assert_only_our_errors(parse, path)


@FUZZ
@given(rows, junk_bytes)
def test_frame_lists(table, tail):
    header = [["original_vido_id", "video_id", "frame_id", "path", "labels"]]
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(folder, "train.csv", header + table, " ", tail)
        assert_only_our_errors(lambda: read_frame_list(path, "/frames"), path)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 200), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@FUZZ
@given(json_values, st.booleans())
def test_ssv2_label_and_annotation_json(content, break_json):
    with tempfile.TemporaryDirectory() as folder:
        text = json.dumps(content)[:-1] if break_json else json.dumps(content)
        labels = os.path.join(folder, "something-something-v2-labels.json")
        annotations = os.path.join(folder, "something-something-v2-train.json")
        for path in (labels, annotations):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        assert_only_our_errors(lambda: read_class_names(labels), labels)
        assert_only_our_errors(lambda: read_ssv2_annotations(annotations, ["Holding something", "a"]), annotations)


@FUZZ
@given(json_values, rows, st.booleans())
def test_class_name_files(content, table, as_json):
    with tempfile.TemporaryDirectory() as folder:
        if as_json:
            path = os.path.join(folder, "classids.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(content, handle)
        else:
            path = write_rows(folder, "labels.txt", table, " ", b"")
        names = assert_only_our_errors(lambda: dataset_class_names(folder, 3), path)
        assert names is None or len(names) == 3
        assert_only_our_errors(lambda: read_class_names(path), path)


coordinates = st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0.0, 1.0, float("nan"), float("inf")])).map(repr)
ava_rows = st.lists(st.tuples(
    st.sampled_from(["-5KQ66BBWC4", "vid"]), st.sampled_from(["902", "1000", "1798", "899", "0902"]),
    coordinates, coordinates, coordinates, coordinates,
    st.one_of(st.integers(-2, 85).map(str), st.just("")),
    st.one_of(st.floats(0, 1.2).map(repr), st.integers(0, 9).map(str), st.just("")),
).map(list), max_size=8)


@FUZZ
@given(st.one_of(rows, ava_rows), junk_bytes, st.booleans())
def test_ava_box_csvs(table, tail, groundtruth):
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(folder, "ava_val_v2.2.csv", table, ",", tail)
        assert_only_our_errors(lambda: list(iter_box_rows(path)), path)
        keyframes = assert_only_our_errors(lambda: read_keyframe_boxes([path], [groundtruth], 0.8), path)
        for keyframe in keyframes or []:
            assert ((keyframe.boxes >= -0.01) & (keyframe.boxes <= 1.01)).all()
            assert (keyframe.boxes[:, 2] >= keyframe.boxes[:, 0]).all()
            assert (keyframe.boxes[:, 3] >= keyframe.boxes[:, 1]).all()


@FUZZ
@given(rows, junk_bytes)
def test_ava_exclusions(table, tail):
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(folder, "excluded.csv", table, ",", tail)
        assert_only_our_errors(lambda: read_exclusions(path), path)


label_map_text = st.lists(
    st.tuples(st.sampled_from(["item", "label"]), st.text(max_size=10), fields,
              st.sampled_from(["id", "label_id", "name_id"])),
    max_size=5,
).map(lambda items: "\n".join(f'{kind} {{\n  name: "{name}"\n  {key}: {value}\n}}' for kind, name, value, key in items))


@FUZZ
@given(label_map_text, junk_bytes)
def test_ava_label_maps(text, tail):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "labels.pbtxt")
        with open(path, "wb") as handle:
            handle.write(text.encode("utf-8", "surrogatepass") + tail)
        assert_only_our_errors(lambda: read_label_map(path), path)


config_keys = st.one_of(
    st.sampled_from(["TRAIN.BATCH_SIZE", "DATA.TRAIN_JITTER_SCALES", "DATA.MEAN", "OUTPUT_DIR", "TASK", "TRAIN",
                     "HIERA.STAGES", "SOLVER.BASE_LR", "TEST.ENABLE", "NOPE.KEY", "TRAIN.BATCH_SIZE.X", "", ".",
                     "DATA..MEAN", "MODEL.MODEL_NAME", "DATA.NUM_FRAMES", "AVA.TRAIN_LISTS"]),
    st.text(max_size=10),
)
config_values = st.one_of(fields, st.sampled_from(["[1, 2]", "[]", "{}", "{'a': 1}", "None", "True", "(1,", "[[1]]",
                                                   "1e999", "-0", "'x'", "[1, 'a']", "__import__('os')"]))


@FUZZ
@given(st.lists(st.tuples(config_keys, config_values), max_size=4))
def test_command_line_overrides(pairs):
    from hiera_video.config import ConfigError, load_config

    opts = [item for pair in pairs for item in pair]
    try:
        load_config(None, opts)
    except ConfigError:
        pass


@FUZZ
@given(json_values, junk_bytes)
def test_yaml_config_files(content, tail):
    from hiera_video.config import ConfigError, load_config

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "job.yaml")
        with open(path, "wb") as handle:
            handle.write(json.dumps({"TRAIN": content, "DATA": {"MEAN": content}}).encode() + tail)
        try:
            load_config(path)
        except ConfigError as error:
            assert "job.yaml" in str(error)


# Config values drawn from each key's declaration (hiera_video/config/ranges.py): the declared ones load,
# the others are ConfigErrors naming the key and where it was given.
CONFIG_FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Keys in rules between keys (validate_config): a declared value may still not fit the other keys' defaults.
SHARED_RULE_KEYS = {"TASK", "MODEL.LOSS_FUNC", "TRAIN.MIXED_PRECISION", "DATA.NUM_FRAMES", "DATA.TRAIN_CROP_SIZE",
                    "DATA.TEST_CROP_SIZE", "MAE.DECODER_EMBED_DIM", "MAE.DECODER_NUM_HEADS"} | {
    key for key in KEY_RANGES if key.startswith("HIERA.")}


def allowed_values(rule: Constraint) -> st.SearchStrategy:
    """Values ``rule`` allows (integers kept to a billion above the bound, as configs are)."""
    if isinstance(rule, Ints):
        return st.integers(rule.low, rule.low + 10**9 if rule.high is None else rule.high)
    if isinstance(rule, Floats):
        return st.floats(rule.low, rule.high, exclude_min=rule.low_open, exclude_max=rule.high_open,
                         allow_nan=False, allow_infinity=False)
    if isinstance(rule, Choice):
        return st.sampled_from(rule.choices())
    if isinstance(rule, Flag):
        return st.booleans()
    if isinstance(rule, Text):
        return st.from_regex(rule.pattern, fullmatch=True) if rule.pattern else st.text(min_size=rule.non_empty)
    if isinstance(rule, Folder):
        return st.text(min_size=1, max_size=20).filter(rule.allows)
    assert isinstance(rule, Items), rule
    sizes = st.sampled_from(rule.lengths) if rule.lengths else st.integers(rule.min_length, rule.min_length + 4)
    lists = sizes.flatmap(lambda size: st.lists(allowed_values(rule.item), min_size=size, max_size=size))
    return lists.map(sorted) if rule.ordered else lists


def refused_values(rule: Constraint):
    """Values of the key's kind that ``rule`` refuses (or of another type), None where every string is fine."""
    if isinstance(rule, Ints):
        above = st.integers(rule.high + 1) if rule.high is not None else st.nothing()
        return st.one_of(st.integers(max_value=rule.low - 1), above, st.floats())
    if isinstance(rule, Floats):
        above = st.floats(rule.high, exclude_min=not rule.high_open) if rule.high is not None else st.nothing()
        return st.one_of(st.floats(max_value=rule.low, exclude_max=not rule.low_open), above,
                         st.sampled_from([math.nan, math.inf, -math.inf]))
    if isinstance(rule, Choice):
        return st.one_of(st.text(max_size=12), st.integers(), st.booleans()).filter(lambda v: not rule.allows(v))
    if isinstance(rule, Flag):
        return st.one_of(st.integers(), st.text(max_size=5))
    if isinstance(rule, Text):
        if rule.pattern:
            return st.text(max_size=20).filter(lambda text: not rule.allows(text))
        return st.just("") if rule.non_empty else None
    if isinstance(rule, Folder):
        return st.sampled_from(["", os.path.abspath(__file__), "out\0put"])
    assert isinstance(rule, Items), rule
    sizes = [n for n in range(6) if n not in rule.lengths] if rule.lengths else list(range(rule.min_length))
    wrong_size = st.sampled_from(sizes).flatmap(
        lambda n: st.lists(allowed_values(rule.item), min_size=n, max_size=n)) if sizes else st.nothing()
    bad_item = st.tuples(allowed_values(Items(rule.item, rule.lengths, rule.min_length)), refused_values(rule.item),
                         st.integers(0, 5)).map(lambda drawn: _with_item(*drawn))
    unordered = allowed_values(Items(rule.item, rule.lengths, rule.min_length)).filter(lambda v: v != sorted(v))
    return st.one_of(wrong_size, bad_item, unordered if rule.ordered else st.nothing(), st.integers())


def _with_item(values: list, item, position: int) -> list:
    """``values`` with ``item`` in place of the one at ``position`` (appended to an empty list)."""
    values = list(values) or [item]
    values[position % len(values)] = item
    return values


def load_with(key: str, value, route: str):
    """``load_config`` with dotted ``key`` set to ``value`` on the command line or in a YAML file."""
    from hiera_video.config import load_config

    if route == "command line":
        return load_config(None, [key, repr(value)])
    group, _, leaf = key.rpartition(".")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "job.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump({group: {leaf: value}} if group else {leaf: value}, handle, allow_unicode=False)
        return load_config(path)


ROUTES = st.sampled_from(["command line", "file"])


@pytest.mark.parametrize("key", sorted(KEY_RANGES))
@CONFIG_FUZZ
@given(data=st.data(), route=ROUTES)
def test_declared_config_values_load(key, data, route):
    from hiera_video.config import ConfigError

    rule = KEY_RANGES[key]
    value = data.draw(allowed_values(rule), label=key)
    try:
        cfg = load_with(key, value, route)
    except ConfigError as error:
        assert key in SHARED_RULE_KEYS, error
        assert f"{key} must be {rule.explain()}" not in str(error)
        return
    assert functools.reduce(lambda node, name: node[name], key.split("."), cfg) == value


@pytest.mark.parametrize("key", [key for key, rule in sorted(KEY_RANGES.items()) if refused_values(rule) is not None])
@CONFIG_FUZZ
@given(data=st.data(), route=ROUTES)
def test_config_values_outside_their_declaration_are_config_errors_naming_the_key(key, data, route):
    from hiera_video.config import ConfigError

    value = data.draw(refused_values(KEY_RANGES[key]), label=key)
    with pytest.raises(ConfigError) as error:
        load_with(key, value, route)
    assert key in str(error.value) and ("command line" if route == "command line" else "job.yaml, line") in str(
        error.value)
