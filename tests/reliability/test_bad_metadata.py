"""Bad metadata: list files and AVA CSVs with wrong columns, foreign encodings, out-of-range labels or
boxes and duplicate rows stop the dataset before any decoding, with ``file:line`` and what to do."""
import pytest

from hiera_video.config import get_cfg
from hiera_video.datasets import build_dataset
from hiera_video.datasets.ava import read_keyframe_boxes
from hiera_video.datasets.list_files import ListFileError
from hiera_video.evaluation.ava_annotations import AnnotationFormatError

GOOD_ROWS = "a.mp4 0\nb.mp4 1\n"

KINETICS_CASES = {
    # name: (bytes of train.csv, line in the error, words of the error)
    "three columns": ((GOOD_ROWS + "c.mp4 1 extra\n").encode(), 3, "expected 2 columns"),
    "label not a number": ((GOOD_ROWS + "c.mp4 one\n").encode(), 3, "not an integer"),
    "label out of range": ((GOOD_ROWS + "c.mp4 5\n").encode(), 3, "out of range [0, 3)"),
    "negative label": ((GOOD_ROWS + "c.mp4 -1\n").encode(), 3, "out of range"),
    "duplicate row": ((GOOD_ROWS + "a.mp4 0\n").encode(), 3, "duplicate path"),
    "latin-1 file name": ((GOOD_ROWS + "caf\u00e9.mp4 1\n").encode("latin-1"), 3, "not UTF-8"),
    "utf-16 file": (GOOD_ROWS.encode("utf-16"), 1, "not UTF-8"),
    "byte-order mark then latin-1": (b"\xef\xbb\xbf" + (GOOD_ROWS + "caf\u00e9.mp4 1\n").encode("latin-1"), 3,
                                     "(byte 0xe9)"),
}


def kinetics_cfg(data_dir):
    """A Kinetics config reading ``data_dir`` with 3 classes (no video is opened at construction)."""
    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX, cfg.MODEL.NUM_CLASSES = str(data_dir), str(data_dir), 3
    return cfg


@pytest.mark.parametrize("content,line,words", KINETICS_CASES.values(), ids=KINETICS_CASES.keys())
def test_a_bad_kinetics_list_names_file_and_line(content, line, words, tmp_path):
    (tmp_path / "train.csv").write_bytes(content)
    with pytest.raises(ListFileError) as error:
        build_dataset(kinetics_cfg(tmp_path), "train")
    assert str(error.value).startswith(f"{tmp_path / 'train.csv'}:{line}: ") and words in str(error.value)


def test_a_byte_order_mark_does_not_become_part_of_the_first_path(tmp_path):
    (tmp_path / "train.csv").write_bytes(GOOD_ROWS.encode("utf-8-sig"))
    dataset = build_dataset(kinetics_cfg(tmp_path), "train")
    assert dataset.video_paths[0] == str(tmp_path / "a.mp4")


AVA_GOOD = "vid,0902,0.1,0.2,0.5,0.9,12,0\n"
AVA_CASES = {
    "six columns": (AVA_GOOD + "vid,0902,0.1,0.2,0.5,0.9\n", 2, "expected 7 or 8"),
    "box beyond the frame": (AVA_GOOD + "vid,0903,0.1,0.2,1.5,0.9,12,0\n", 2, "within [0, 1]"),
    "inverted box": (AVA_GOOD + "vid,0903,0.6,0.2,0.5,0.9,12,0\n", 2, "x1 <= x2"),
    "pixel box": (AVA_GOOD + "vid,0903,10,20,300,400,12,0\n", 2, "fractions of the frame"),
    "nan box": (AVA_GOOD + "vid,0903,nan,0.2,0.5,0.9,12,0\n", 2, "within [0, 1]"),
    "action id out of range": (AVA_GOOD + "vid,0903,0.1,0.2,0.5,0.9,81,0\n", 2, "outside 1..80"),
    "action id zero": (AVA_GOOD + "vid,0903,0.1,0.2,0.5,0.9,0,0\n", 2, "outside 1..80"),
    "timestamp with a fraction": (AVA_GOOD + "vid,902.5,0.1,0.2,0.5,0.9,12,0\n", 2, "must be an integer"),
}


@pytest.mark.parametrize("text,line,words", AVA_CASES.values(), ids=AVA_CASES.keys())
def test_a_bad_ava_groundtruth_csv_names_file_and_line(text, line, words, tmp_path):
    path = tmp_path / "ava_train_v2.2.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationFormatError) as error:
        read_keyframe_boxes([str(path)], [True], 0.8)
    assert str(error.value).startswith(f"{path}:{line}: ") and words in str(error.value)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "with byte-order mark"])
def test_a_latin1_ava_csv_names_the_line_of_the_first_bad_byte(tmp_path, bom):
    path = tmp_path / "ava_train_v2.2.csv"
    path.write_bytes(bom + (AVA_GOOD + AVA_GOOD.replace("vid", "vid\u00e9")).encode("latin-1"))
    with pytest.raises(AnnotationFormatError, match=r":2: not UTF-8 text \(byte 0xe9\)"):
        read_keyframe_boxes([str(path)], [True], 0.8)


def test_duplicate_ava_rows_do_not_duplicate_boxes_or_labels(tmp_path):
    path = tmp_path / "ava_train_v2.2.csv"
    path.write_text(AVA_GOOD * 3, encoding="utf-8")
    [keyframe] = read_keyframe_boxes([str(path)], [True], 0.8)
    assert keyframe.boxes.shape == (1, 4) and keyframe.labels.sum() == 1 and keyframe.labels[0, 11] == 1
