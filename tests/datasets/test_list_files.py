"""List and annotation files: parsed as PySlowFast and the official releases write them; errors say where."""
import json

import pytest

from hiera_video.datasets.list_files import (
    ListFileError,
    dataset_class_names,
    is_frame_list,
    is_kinetics_annotation_csv,
    kinetics_entries,
    read_class_names,
    read_frame_list,
    read_kinetics_annotations,
    read_path_label_list,
    read_ssv2_annotations,
)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_path_label_list_joins_the_prefix_and_skips_blank_lines(tmp_path):
    list_path = write(tmp_path / "train.csv", "a/x.mp4 0\n\nb/y.mp4 2\n")
    entries = read_path_label_list(list_path, "/data", " ", num_classes=3)
    assert [(e.path, e.label) for e in entries] == [("/data/a/x.mp4", 0), ("/data/b/y.mp4", 2)]
    assert entries[1].source == f"{list_path}:3"


def test_custom_separator(tmp_path):
    list_path = write(tmp_path / "train.csv", "a b.mp4,1\n")
    assert read_path_label_list(list_path, "", ",")[0].path == "a b.mp4"


@pytest.mark.parametrize("text, line, message", [
    ("a.mp4 0\nb.mp4\n", 2, "expected 2 columns"),
    ("a.mp4 0 extra\n", 1, "expected 2 columns .*, found 3"),
    ("a.mp4 zero\n", 1, "label 'zero' is not an integer"),
    ("a.mp4 0\nb.mp4 3\n", 2, "label 3 out of range \\[0, 3\\)"),
    ("a.mp4 -1\n", 1, "label -1 out of range"),
    ("a.mp4 0\nb.mp4 1\na.mp4 2\n", 3, "duplicate path .* \\(first on line 1\\)"),
])
def test_malformed_lists_fail_with_file_and_line(tmp_path, text, line, message):
    list_path = write(tmp_path / "val.csv", text)
    with pytest.raises(ListFileError, match=f"{list_path}:{line}: {message}"):
        read_path_label_list(list_path, "", " ", num_classes=3)


def test_empty_list_is_an_error(tmp_path):
    with pytest.raises(ListFileError, match="no videos listed"):
        read_path_label_list(write(tmp_path / "train.csv", "\n"))


KINETICS_CSV = (
    "label,youtube_id,time_start,time_end,split\n"
    "riding a bike,abc,14,24,train\n"
    "abseiling,def,0,10,train\n"
    "zumba,ghi,100,110,train\n"
)


def test_official_kinetics_csv_uses_sorted_class_names_and_the_file_name_pattern(tmp_path):
    list_path = write(tmp_path / "train.csv", KINETICS_CSV)
    assert is_kinetics_annotation_csv(list_path)
    rows = read_kinetics_annotations(list_path)
    classes = sorted({row["label"] for row in rows})
    entries = kinetics_entries(rows, classes, list_path, "/k400", "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4")
    assert classes == ["abseiling", "riding a bike", "zumba"]
    assert [(e.path, e.label) for e in entries] == [
        ("/k400/abc_000014_000024.mp4", 1), ("/k400/def_000000_000010.mp4", 0), ("/k400/ghi_000100_000110.mp4", 2)]


def test_kinetics_name_format_can_use_class_folders(tmp_path):
    list_path = write(tmp_path / "train.csv", KINETICS_CSV)
    rows = read_kinetics_annotations(list_path)
    entries = kinetics_entries(rows, ["abseiling", "riding a bike", "zumba"], list_path, "", "{label}/{youtube_id}.mp4")
    assert entries[0].path == "riding a bike/abc.mp4"


def test_kinetics_csv_errors_name_the_line(tmp_path):
    missing_column = write(tmp_path / "a.csv", "label,youtube_id,time_start\nx,y,1\n")
    with pytest.raises(ListFileError, match=r"a.csv:1: header lacks \['time_end'\]"):
        read_kinetics_annotations(missing_column)
    bad_time = write(tmp_path / "b.csv", "label,youtube_id,time_start,time_end\nx,y,one,2\n")
    with pytest.raises(ListFileError, match="b.csv:2: time_start"):
        read_kinetics_annotations(bad_time)
    for name, times in (("inf", "inf,10"), ("nan", "0,nan"), ("backwards", "20,10"), ("negative", "-5,5")):
        bad = write(tmp_path / f"{name}.csv", f"label,youtube_id,time_start,time_end\nx,y,1,11\nx,z,{times}\n")
        with pytest.raises(ListFileError, match=f"{name}.csv:3: time_start"):
            read_kinetics_annotations(bad)
    rows = read_kinetics_annotations(write(tmp_path / "c.csv", "label,youtube_id,time_start,time_end\nnew,y,1,2\n"))
    with pytest.raises(ListFileError, match="c.csv:2: class 'new' is not among the training classes"):
        kinetics_entries(rows, ["old"], str(tmp_path / "c.csv"), "", "{youtube_id}.mp4")
    with pytest.raises(ListFileError, match="VIDEO_NAME_FORMAT"):
        kinetics_entries(rows, ["new"], str(tmp_path / "c.csv"), "", "{video}.mp4")


def test_a_path_label_list_is_not_taken_for_an_official_csv(tmp_path):
    assert not is_kinetics_annotation_csv(write(tmp_path / "train.csv", "a.mp4 0\n"))


def test_class_names_from_classids_json_or_labels_txt_or_numbers(tmp_path):
    assert dataset_class_names(str(tmp_path), 2) == ["0", "1"]
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    assert dataset_class_names(str(tmp_path), 2) == ["cat", "dog"]
    with pytest.raises(ListFileError, match="labels.txt: 2 names for 3 classes"):
        dataset_class_names(str(tmp_path), 3)
    (tmp_path / "classids.json").write_text(json.dumps({"dog": 0, "cat": 1}))
    assert dataset_class_names(str(tmp_path), 2) == ["dog", "cat"]


def test_class_name_files_text_and_json_forms(tmp_path):
    text = tmp_path / "labels.txt"
    text.write_text("abseiling\nair drumming\n\n")
    assert read_class_names(text) == ["abseiling", "air drumming"]  # blank lines at the end are ignored
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(["a", "b", "c"]))
    assert read_class_names(as_list) == ["a", "b", "c"]
    name_to_index = tmp_path / "classids.json"
    name_to_index.write_text(json.dumps({"b": 1, "a": 0, "c": "2"}))
    assert read_class_names(name_to_index) == ["a", "b", "c"]
    index_to_name = tmp_path / "names.json"
    index_to_name.write_text(json.dumps({"1": "b", "0": "a"}))
    assert read_class_names(index_to_name) == ["a", "b"]


def test_class_name_file_errors_name_the_file_and_line(tmp_path):
    gap = tmp_path / "gap.txt"
    gap.write_text("a\n\nc\n")
    with pytest.raises(ListFileError, match=r"gap.txt:2: empty line"):
        read_class_names(gap)
    holes = tmp_path / "holes.json"
    holes.write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(ListFileError, match=r"holes.json: class indices must be 0..1"):
        read_class_names(holes)
    with pytest.raises(FileNotFoundError, match="missing.txt does not exist"):
        read_class_names(tmp_path / "missing.txt")


def test_a_blank_line_in_a_datasets_labels_txt_is_an_error_not_a_shift(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\n\ndog\nbird\n")
    with pytest.raises(ListFileError, match=r"labels.txt:2: empty line"):
        dataset_class_names(str(tmp_path), 3)


def test_ssv2_labels_and_annotations(tmp_path):
    templates = {"Holding something": "1", "Pushing something from left to right": "0"}
    labels = write(tmp_path / "labels.json", json.dumps(templates))
    names = read_class_names(labels)
    assert names == ["Pushing something from left to right", "Holding something"]
    annotations = write(tmp_path / "train.json", json.dumps([
        {"id": "7", "label": "holding a cup", "template": "Holding [something]", "placeholders": ["a cup"]},
        {"id": "9", "template": "Pushing [something] from left to right"},
    ]))
    assert read_ssv2_annotations(annotations, names) == [("7", 1), ("9", 0)]


def test_ssv2_annotation_errors_name_the_entry(tmp_path):
    names = ["Holding something"]
    unknown = write(tmp_path / "a.json", json.dumps([{"id": "1", "template": "Dropping [something]"}]))
    with pytest.raises(ListFileError, match=r"a.json: entry 0 \(id 1\): template 'Dropping something'"):
        read_ssv2_annotations(unknown, names)
    duplicate = write(tmp_path / "b.json", json.dumps([{"id": "1", "template": "Holding [something]"}] * 2))
    with pytest.raises(ListFileError, match="entry 1: duplicate id 1"):
        read_ssv2_annotations(duplicate, names)
    broken = write(tmp_path / "c.json", '[{"id": "1",\n "template": }]')
    with pytest.raises(ListFileError, match="c.json:2: invalid JSON"):
        read_ssv2_annotations(broken, names)


def test_frame_list_groups_frames_by_video(tmp_path):
    list_path = write(tmp_path / "train.csv", (
        "original_vido_id video_id frame_id path labels\n"
        "7 0 0 7/7_000001.jpg \"\"\n"
        "7 0 1 7/7_000002.jpg \"\"\n"
        "9 1 0 9/9_000001.jpg \"\"\n"
    ))
    assert is_frame_list(list_path)
    assert read_frame_list(list_path, "/frames") == {
        "7": ["/frames/7/7_000001.jpg", "/frames/7/7_000002.jpg"], "9": ["/frames/9/9_000001.jpg"]}


def test_frame_list_errors_name_the_line(tmp_path):
    bad_header = write(tmp_path / "a.csv", "video path\n")
    with pytest.raises(ListFileError, match="a.csv:1: header"):
        read_frame_list(bad_header)
    bad_row = write(tmp_path / "b.csv", "original_vido_id video_id frame_id path labels\n7 0 0\n")
    with pytest.raises(ListFileError, match="b.csv:2: expected 5 space-separated columns, found 3"):
        read_frame_list(bad_row)


def test_labels_int_would_accept_are_still_refused(tmp_path):
    """int() takes "1_0", " 1" and non-ASCII digits; a list file's label must be plain decimal digits."""
    from hiera_video.datasets.list_files import ListFileError, _check_label

    for text in ("1_0", "١", "+1"):
        with pytest.raises(ListFileError, match="is not an integer"):
            _check_label(str(tmp_path / "train.csv"), 3, text, 400)
    assert _check_label(str(tmp_path / "train.csv"), 3, "12", 400) == 12
