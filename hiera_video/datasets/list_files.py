"""Parsers for dataset list and annotation files; every error names the file and the line.

Formats:

- PySlowFast video lists (``{train,val,test}.csv``): no header, one ``path label`` per line, split on
  ``DATA.PATH_LABEL_SEPARATOR``; paths are joined to ``DATA.PATH_PREFIX``. Blank lines are skipped.
- Official Kinetics annotation CSVs: header with at least ``label,youtube_id,time_start,time_end``
  (``split``, ``is_cc`` ignored). Class indices come from the sorted class names; the file of a row is
  ``name_format.format(youtube_id=..., time_start=..., time_end=..., label=..., split=...)``, by default
  ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` (``DATA.VIDEO_NAME_FORMAT``; e.g.
  ``{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` for class folders).
- Something-Something-v2 JSON: ``something-something-v2-labels.json`` maps template -> index string (a
  class-name file, below); ``-train.json`` / ``-validation.json`` entries have ``id`` and ``template``
  (brackets removed to find the label).
- PySlowFast frame lists (SSv2 / Charades layout): header ``original_vido_id video_id frame_id path
  labels``, then one frame per line, 5 space-separated columns; frames are grouped by ``original_vido_id``.
- Class-name files (:func:`read_class_names`: ``classids.json`` or ``labels.txt`` beside a PySlowFast
  list, SSv2's labels file, ``tools/predict.py --labels``):

  - text: one class name per line, line ``i`` names class ``i``. Blank lines at the end are ignored; a
    blank line before the last name is an error naming its line (skipping it would shift every later
    class to the wrong index);
  - a JSON list of names;
  - a JSON object ``{"name": index}`` (PySlowFast's ``classids.json``, SSv2's labels with index strings)
    or ``{"index": "name"}``, the indices ``0 .. N-1`` each once.

A malformed file raises :class:`ListFileError` at dataset construction with ``file:line: problem``.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import Optional

from hiera_video.utils.errors import MissingInputError, UserError

KINETICS_NAME_FORMAT = "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
FRAME_LIST_HEADER = ["original_vido_id", "video_id", "frame_id", "path", "labels"]


class ListFileError(UserError, ValueError):
    """A list or annotation file is malformed; the message is ``file:line: problem. What to do``."""

    def __init__(self, path: str, line: Optional[int], problem: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


class _Utf8TextFile:
    """A text file read as UTF-8 (a byte-order mark dropped), streamed, whose decoding errors are
    ListFileErrors naming the line of the first bad byte."""

    def __init__(self, path: str, newline: Optional[str]):
        self.path = path
        self._file = open(path, encoding="utf-8-sig", newline=newline)

    def __enter__(self) -> "_Utf8TextFile":
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()

    def __iter__(self) -> "_Utf8TextFile":
        return self

    def __next__(self) -> str:
        return self._decoded(self._file.__next__)

    def read(self, size: int = -1) -> str:
        """Like ``TextIOWrapper.read``."""
        return self._decoded(self._file.read, size)

    def readline(self, size: int = -1) -> str:
        """Like ``TextIOWrapper.readline``."""
        return self._decoded(self._file.readline, size)

    def _decoded(self, method, *args):
        try:
            return method(*args)
        except UnicodeDecodeError:
            raise self._encoding_error() from None

    def _encoding_error(self) -> ListFileError:
        with open(self.path, "rb") as handle:
            data = handle.read()
        try:
            data.decode("utf-8-sig")
            start = len(data)
        except UnicodeDecodeError as error:
            data, start = error.object, error.start  # the object is the data without its byte-order mark
        byte = f" (byte 0x{data[start]:02x})" if start < len(data) else ""
        return ListFileError(self.path, data.count(b"\n", 0, start) + 1,
                             f"not UTF-8 text{byte}; save the file as UTF-8")


def open_text_file(path: str, newline: Optional[str] = None) -> _Utf8TextFile:
    """Open ``path`` as UTF-8 text (``newline`` as ``open``'s): a byte that is not UTF-8 is a
    :class:`ListFileError` naming its line, not a UnicodeDecodeError."""
    return _Utf8TextFile(path, newline)


@dataclass
class VideoEntry:
    """One listed video: path (prefix joined), integer label, the list line it came from, and its frame
    image paths when the video is stored as frames (None for video files)."""

    path: str
    label: int
    source: str = ""
    frame_paths: Optional[list] = None


def _check_label(list_path: str, line: int, text: str, num_classes: Optional[int]) -> int:
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):  # int() would also take "1_0", " 1" and "١"
        raise ListFileError(list_path, line, f"label {text!r} is not an integer")
    label = int(text)
    if label < 0 or (num_classes is not None and label >= num_classes):
        limit = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ListFileError(
            list_path, line, f"label {label} out of range {limit}; check MODEL.NUM_CLASSES and the list file"
        )
    return label


def _check_duplicate(list_path: str, line: int, path: str, seen: dict) -> None:
    if path in seen:
        raise ListFileError(list_path, line, f"duplicate path {path!r} (first on line {seen[path]}); remove one")
    seen[path] = line


def read_path_label_list(
    list_path: str, path_prefix: str = "", separator: str = " ", num_classes: Optional[int] = None
) -> list[VideoEntry]:
    """Parse a PySlowFast ``path label`` list into :class:`VideoEntry` items."""
    entries, seen = [], {}
    with open_text_file(list_path) as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            columns = line.split(separator) if separator != " " else line.split()
            if len(columns) != 2:
                raise ListFileError(
                    list_path,
                    line_number,
                    f"expected 2 columns 'path{separator}label', found {len(columns)} "
                    f"(DATA.PATH_LABEL_SEPARATOR is {separator!r})",
                )
            label = _check_label(list_path, line_number, columns[1], num_classes)
            path = os.path.join(path_prefix, columns[0])
            _check_duplicate(list_path, line_number, path, seen)
            entries.append(VideoEntry(path, label, f"{list_path}:{line_number}"))
    if not entries:
        raise ListFileError(list_path, None, "no videos listed")
    return entries


def is_kinetics_annotation_csv(list_path: str) -> bool:
    """Whether the file starts with the official Kinetics header (``label,youtube_id,...``)."""
    with open_text_file(list_path) as handle:
        header = handle.readline().strip().lower()
    return "youtube_id" in header.split(",")


def read_kinetics_annotations(list_path: str) -> list[dict]:
    """Rows of an official Kinetics CSV as dicts with ``label, youtube_id, time_start, time_end`` (+ line)."""
    required = ("label", "youtube_id", "time_start", "time_end")
    rows = []
    with open_text_file(list_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in required if name not in (reader.fieldnames or [])]
        if missing:
            raise ListFileError(
                list_path, 1, f"header lacks {missing}; expected 'label,youtube_id,time_start,time_end,split'"
            )
        for row in reader:
            line = reader.line_num
            if None in row or any(row[name] is None for name in required):
                raise ListFileError(list_path, line, f"expected {len(reader.fieldnames)} columns")
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (ValueError, OverflowError):  # int(float("inf")) overflows
                raise ListFileError(list_path, line, f"time_start / time_end must be finite numbers of seconds, got "
                                    f"{row['time_start']!r} / {row['time_end']!r}") from None
            if not 0 <= start <= end:
                raise ListFileError(list_path, line, f"time_start {start} / time_end {end}: need 0 <= start <= end")
            if not row["label"]:
                raise ListFileError(list_path, line, "empty label (unlabelled test split?); use a labelled list")
            rows.append(dict(row, time_start=start, time_end=end, line=line))
    if not rows:
        raise ListFileError(list_path, None, "no videos listed")
    return rows


def kinetics_entries(
    rows: list[dict], class_names: list[str], list_path: str, path_prefix: str, name_format: str
) -> list[VideoEntry]:
    """Turn official Kinetics rows into :class:`VideoEntry` items with indices into ``class_names``."""
    index_of = {name: i for i, name in enumerate(class_names)}
    entries, seen = [], {}
    for row in rows:
        if row["label"] not in index_of:
            raise ListFileError(
                list_path, row["line"], f"class {row['label']!r} is not among the training classes"
            )
        try:
            name = name_format.format(**{k: v for k, v in row.items() if k != "line"})
        except (KeyError, ValueError, IndexError) as error:
            raise ListFileError(
                list_path, row["line"], f"DATA.VIDEO_NAME_FORMAT {name_format!r} does not apply ({error!r})"
            ) from None
        path = os.path.join(path_prefix, name)
        _check_duplicate(list_path, row["line"], path, seen)
        entries.append(VideoEntry(path, index_of[row["label"]], f"{list_path}:{row['line']}"))
    return entries


def _read_json(path: str, expected_type: type, expected: str):
    """The JSON value in ``path``; a ListFileError naming the line when it is not JSON, or the file when the
    value is not an ``expected_type`` (``expected`` describes the right shape)."""
    with open_text_file(path) as handle:
        try:
            value = json.load(handle)
        except json.JSONDecodeError as error:
            raise ListFileError(path, error.lineno, f"invalid JSON ({error.msg})") from None
    if not isinstance(value, expected_type):
        raise ListFileError(path, None, f"expected {expected}")
    return value


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names by index from a text or JSON class-name file (see the module docstring)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingInputError(f"class-name file {path} does not exist (one class name per line, or JSON)")
    with open_text_file(path) as handle:
        text = handle.read()
    if path.endswith(".json") or text.lstrip()[:1] in ("[", "{"):
        return _names_from_json(path, text)
    return _names_from_lines(path, text)


def _names_from_lines(path: str, text: str) -> list[str]:
    names = []
    for number, line in enumerate(text.rstrip().splitlines(), start=1):
        name = line.strip()
        if not name:
            raise ListFileError(path, number,
                                "empty line: line i must name class i (remove the line or name the class)")
        names.append(name)
    if not names:
        raise ListFileError(path, None, "no class names (write one class name per line)")
    return names


def _names_from_json(path: str, text: str) -> list[str]:
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise ListFileError(path, error.lineno, f"invalid JSON ({error.msg})") from None
    if isinstance(content, list) and content and all(isinstance(name, str) for name in content):
        return content
    if not isinstance(content, dict) or not content:
        raise ListFileError(path, None, "expected a list of names, {name: index} or {index: name}")
    if all(_is_class_index(key) for key in content):
        index_to_name = {int(key): str(name) for key, name in content.items()}
    elif all(_is_class_index(value) for value in content.values()):
        index_to_name = {int(value): str(name) for name, value in content.items()}
    else:
        raise ListFileError(path, None, "a JSON object must map every name to an index or every index to a name")
    if sorted(index_to_name) != list(range(len(content))):
        raise ListFileError(path, None, f"class indices must be 0..{len(content) - 1}, each once")
    return [index_to_name[i] for i in range(len(content))]


def _is_class_index(value) -> bool:
    """An int (not a bool) or a string of decimal digits."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdecimal())


def dataset_class_names(data_dir: str, num_classes: int) -> list[str]:
    """Class names of a PySlowFast list from ``classids.json`` or ``labels.txt`` in ``data_dir``
    (:func:`read_class_names`), which must name ``num_classes`` classes; else ``"0", "1", ...``."""
    for name in ("classids.json", "labels.txt"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            names = read_class_names(path)
            if len(names) != num_classes:
                raise ListFileError(path, None, f"{len(names)} names for {num_classes} classes (MODEL.NUM_CLASSES)")
            return names
    return [str(i) for i in range(num_classes)]


def read_ssv2_annotations(annotations_path: str, class_names: list[str]) -> list[tuple[str, int]]:
    """``-train.json`` / ``-validation.json`` -> ``(video id, label)`` pairs."""
    index_of = {name: i for i, name in enumerate(class_names)}
    items = _read_json(annotations_path, list, 'a JSON list of {"id": ..., "template": ...} objects')
    pairs, seen = [], {}
    for position, item in enumerate(items):
        where = f"entry {position}"
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("template"), str):
            raise ListFileError(annotations_path, None, f"{where} lacks 'id' or a 'template' string")
        template = item["template"].replace("[", "").replace("]", "")
        if template not in index_of:
            raise ListFileError(
                annotations_path, None, f"{where} (id {item['id']}): template {template!r} not in the labels file"
            )
        video_id = str(item["id"])
        if video_id in seen:
            raise ListFileError(
                annotations_path, None, f"{where}: duplicate id {video_id} (first at entry {seen[video_id]})"
            )
        seen[video_id] = position
        pairs.append((video_id, index_of[template]))
    return pairs


def is_frame_list(list_path: str) -> bool:
    """Whether the file starts with PySlowFast's frame-list header (``original_vido_id video_id ...``)."""
    with open_text_file(list_path) as handle:
        return handle.readline().split()[:1] == ["original_vido_id"]


def read_frame_list(list_path: str, path_prefix: str = "") -> dict[str, list[str]]:
    """PySlowFast frame list -> ``{original_vido_id: [frame paths in list order]}``."""
    videos: dict[str, list[str]] = {}
    with open_text_file(list_path) as handle:
        header = handle.readline().split()
        if header != FRAME_LIST_HEADER:
            raise ListFileError(list_path, 1, f"header {header} is not {' '.join(FRAME_LIST_HEADER)!r}")
        for line_number, line in enumerate(handle, start=2):
            columns = line.split()
            if not columns:
                continue
            if len(columns) not in (4, 5):  # the labels column may be empty
                raise ListFileError(list_path, line_number, f"expected 5 space-separated columns, found {len(columns)}")
            videos.setdefault(columns[0], []).append(os.path.join(path_prefix, columns[3]))
    if not videos:
        raise ListFileError(list_path, None, "no frames listed")
    return videos
