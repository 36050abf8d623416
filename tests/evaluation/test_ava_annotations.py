"""Reading AVA label maps, box CSVs and exclusions, with file:line errors."""
import pytest

from hiera_video.evaluation import AnnotationFormatError, iter_box_rows, make_image_key, read_exclusions, read_label_map

ACTIVITYNET_MAP = '''item {
  name: "bend/bow (at the waist)"
  id: 1
}
item {
  name: "crouch/kneel"
  id: 3
}
'''
FULL_AVA_MAP = '''label {
  name: "bend/bow (at the waist)"
  label_id: 1
  label_type: PERSON_MOVEMENT
}
label { name: "crawl" label_id: 2 label_type: PERSON_MOVEMENT }
'''


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_reads_both_label_map_flavours(tmp_path):
    assert read_label_map(write(tmp_path, "a.pbtxt", ACTIVITYNET_MAP)) == {1: "bend/bow (at the waist)", 3: "crouch/kneel"}
    assert read_label_map(write(tmp_path, "b.pbtxt", FULL_AVA_MAP)) == {1: "bend/bow (at the waist)", 2: "crawl"}


@pytest.mark.parametrize(
    "text, message",
    [
        ('item {\n  name: "a"\n}\n', "a.pbtxt:1: label map entry without id"),
        ('item {\n  name: "a"\n  id: 1\n}\nitem {\n  name: "b"\n  id: 1\n}\n', "a.pbtxt:5: class id 1 is listed twice"),
        ('item {\n  name: "a"\n  id: one\n}\n', "a.pbtxt:1: id must be an integer"),
        ("nothing here\n", "no label map entries"),
        ('item { name: "a" id: 1 }\nitem { name: "a" id: 2 }\n',
         "a.pbtxt:2: class name 'a' is listed twice \\(ids 1 and 2\\)"),
        ('item { name: "a" id: 1 }\nitem {\n  name: "b"\n  id: 2\n', "a.pbtxt:2: unexpected 'item' outside an entry"),
        ('item { name: "a" id: 1 }\nitme { name: "b" id: 2 }\n', "a.pbtxt:2: unexpected 'itme' outside an entry"),
        ('item { name: "a" id: 1 } }\n', "a.pbtxt:1: unexpected '}' outside an entry"),
    ],
)
def test_label_map_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(AnnotationFormatError, match=message):
        read_label_map(write(tmp_path, "a.pbtxt", text))


def test_label_map_names_may_hold_braces_and_comments_may_sit_between_entries(tmp_path):
    text = '# AVA\nitem { name: "a {b}" id: 1 }  # first\n\nlabel { name: "c" label_id: 2 }\n# end\n'
    assert read_label_map(write(tmp_path, "a.pbtxt", text)) == {1: "a {b}", 2: "c"}


def test_reads_groundtruth_predicted_box_and_detection_rows(tmp_path):
    path = write(
        tmp_path,
        "boxes.csv",
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1\n"
        "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,,0.996\n"
        "\n"
        "vid,1798,0.1,0.2,0.3,0.4,12\n",
    )
    first, proposal, short = iter_box_rows(path)
    assert (first.video_id, first.timestamp, first.x1, first.y2, first.action_id, first.last_column) == (
        "-5KQ66BBWC4", 902, 0.077, 0.811, 80, 1.0)
    assert proposal.action_id is None and proposal.last_column == 0.996
    assert short.line == 4 and short.last_column is None


@pytest.mark.parametrize(
    "line, message",
    [
        ("v,0902,0.1,0.2,0.3\n", "boxes.csv:2: expected 7 or 8"),
        ("v,0902.5,0.1,0.2,0.3,0.4,1\n", "boxes.csv:2: the timestamp"),
        ("v,0902,0.1,x,0.3,0.4,1\n", "boxes.csv:2: box coordinate \\(column 4\\)"),
        ("v,0902,0.1,0.2,0.3,0.4,stand\n", "boxes.csv:2: action_id"),
        ("v,0902,0.1,0.2,0.3,0.4,1,nan\n", "boxes.csv:2: column 8 .* must be a finite number, got 'nan'"),
        ("v,0902,0.1,0.2,0.3,0.4,1,inf\n", "boxes.csv:2: column 8 .* must be a finite number, got 'inf'"),
        ("v,0902,0.1,0.2,0.3,0.4,1,-inf\n", "boxes.csv:2: column 8 .* must be a finite number"),
        ("v,0902,nan,0.2,0.3,0.4,1,0.5\n", "boxes.csv:2: box coordinate \\(column 3\\) must be a finite number"),
        ("v,0902,0.1,0.2,0.3,-inf,1\n", "boxes.csv:2: box coordinate \\(column 6\\) must be a finite number"),
        ("v,0902,0.3,0.2,0.1,0.4,1\n", "boxes.csv:2: box 0.3,0.2,0.1,0.4 is not x1 <= x2"),
        ("v,0902,0.1,0.2,0.3,1.02,1\n", "boxes.csv:2: box 0.1,0.2,0.3,1.02 is not x1 <= x2"),
    ],
)
def test_box_csv_errors_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path, "boxes.csv", "v,0902,0.1,0.2,0.3,0.4,1\n" + line)
    with pytest.raises(AnnotationFormatError, match=message):
        list(iter_box_rows(path))


def test_without_box_checks_any_finite_box_is_read(tmp_path):
    path = write(tmp_path, "d.csv", "v,0902,0.3,0.2,0.1,0.4,1,0.5\nv,0902,-0.2,0.2,0.3,1.5,1,0.5\n")
    assert [row[3:7] for row in iter_box_rows(path, check_boxes=False)] == [(0.3, 0.2, 0.1, 0.4), (-0.2, 0.2, 0.3, 1.5)]
    with pytest.raises(AnnotationFormatError, match="d.csv:1: box coordinate \\(column 3\\) must be a finite"):
        list(iter_box_rows(write(tmp_path, "d.csv", "v,0902,nan,0.2,0.3,0.4,1,0.5\n"), check_boxes=False))


def test_exclusions_become_keys(tmp_path):
    path = write(tmp_path, "excluded.csv", "-IELREHX_js,1753\n  \nabc,0902\n")
    assert read_exclusions(path) == {"-IELREHX_js,1753", "abc,0902"}
    assert read_exclusions(None) == set()
    assert make_image_key("abc", "902") == "abc,0902"
    with pytest.raises(AnnotationFormatError, match="bad.csv:1: expected 2 columns"):
        read_exclusions(write(tmp_path, "bad.csv", "abc,0902,1\n"))
