"""Readers for the AVA v2.2 annotation files, shared by the evaluator and the AVA dataset.

Formats (https://research.google.com/ava/download.html):

- box CSVs (``ava_{train,val}_v2.2.csv``, ``ava_{train,val}_predicted_boxes.csv``, detections):
  ``video_id,timestamp,x1,y1,x2,y2,action_id[,last]`` with coordinates normalized to [0, 1]; ``last`` is
  the person id in ground-truth files and the score in predicted-box and detection files; ``action_id``
  is empty in predicted-box files.
- excluded timestamps: ``video_id,timestamp``.
- label maps, in two flavours: ``item { name: "..." id: N }`` (ActivityNet) and
  ``label { name: "..." label_id: N label_type: ... }`` (the full AVA action list).

Every malformed line raises :class:`AnnotationFormatError` naming the file and the line.
"""
from __future__ import annotations

import csv
import io
import math
import re
from typing import Iterator, NamedTuple

from iopath.common.file_io import g_pathmgr

from hiera_video.utils.errors import UserError

# The 60 action ids of ava_action_list_v2.2_for_activitynet_2019.pbtxt, the classes AVA v2.2 is scored on.
AVA_EVALUATED_ACTION_IDS = (
    1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 20, 22, 24, 26, 27, 28, 29, 30, 34, 36, 37, 38, 41,
    43, 45, 46, 47, 48, 49, 51, 52, 54, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 72, 73,
    74, 76, 77, 78, 79, 80,
)
# Ids run 1..80 in every AVA release; models predict all 80 (index = id - 1).
AVA_NUM_ACTION_IDS = 80


class AnnotationFormatError(UserError, ValueError):
    """An annotation file cannot be read or used; the message names the file, the line where there is one,
    and the fix."""


class BoxRow(NamedTuple):
    """One row of an AVA box CSV.

    ``action_id`` is None where the column is empty (predicted-box files). ``last_column`` is column 8:
    the person id in ground-truth files, the score in predicted-box and detection files, None when the
    row has 7 columns.
    """

    line: int
    video_id: str
    timestamp: int
    x1: float
    y1: float
    x2: float
    y2: float
    action_id: int | None
    last_column: float | None


def _open_text(path: str) -> io.StringIO:
    """The UTF-8 text of ``path`` (any iopath location) as a file object; a byte that is not UTF-8 is an
    :class:`AnnotationFormatError` naming its line."""
    with g_pathmgr.open(path, "rb") as handle:
        data = handle.read()
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as error:
        line = error.object.count(b"\n", 0, error.start) + 1  # the object is the data without its BOM
        raise AnnotationFormatError(
            f"{path}:{line}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the file as UTF-8"
        ) from None


def make_image_key(video_id: str, timestamp: int | str) -> str:
    """The evaluator's key of one keyframe: ``"video_id,%04d"`` (e.g. ``"-5KQ66BBWC4,0902"``)."""
    return "%s,%04d" % (video_id, int(timestamp))


def _parse_int(text: str, path: str, line: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise AnnotationFormatError(f"{path}:{line}: {what} must be an integer, got {text!r}") from None


def _parse_float(text: str, path: str, line: int, what: str, hint: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationFormatError(f"{path}:{line}: {what} must be a number, got {text!r}{hint}") from None
    if not math.isfinite(value):
        raise AnnotationFormatError(f"{path}:{line}: {what} must be a finite number, got {text!r}{hint}")
    return value


_BOX_HINT = "; AVA boxes are corners within [0, 1], in fractions of the frame width and height"


def _parse_fields_slowly(fields: list[str], path: str, line: int) -> tuple:
    """Parse a row field by field, raising :class:`AnnotationFormatError` for the first bad one."""
    timestamp = _parse_int(fields[1], path, line, "the timestamp (column 2, whole seconds)")
    x1, y1, x2, y2 = (
        _parse_float(fields[i], path, line, f"box coordinate (column {i + 1})", _BOX_HINT) for i in range(2, 6)
    )
    action_text = fields[6].strip()
    action_id = None if action_text == "" else _parse_int(action_text, path, line, "action_id (column 7)")
    last = None
    if len(fields) == 8 and fields[7].strip() != "":
        last = _parse_float(fields[7], path, line, "column 8 (person id or score)")
    return timestamp, x1, y1, x2, y2, action_id, last


# Detectors' boxes may poke out of the frame by a rounding error.
_BOX_TOLERANCE = 0.01


def _is_normalized_box(x1: float, y1: float, x2: float, y2: float) -> bool:
    """Finite corners with x1 <= x2 and y1 <= y2 inside [0, 1] (up to _BOX_TOLERANCE); NaN fails."""
    low, high = -_BOX_TOLERANCE, 1.0 + _BOX_TOLERANCE
    return low <= x1 <= x2 <= high and low <= y1 <= y2 <= high


def iter_box_rows(path: str, check_boxes: bool = True) -> Iterator[BoxRow]:
    """Yield the rows of an AVA box CSV (ground truth, predicted boxes or detections), in file order.

    Raises :class:`AnnotationFormatError` (``file:line``) for a row without 7 or 8 columns, with a
    non-numeric field, a NaN or infinite number, or (``check_boxes``) a box that is not x1 <= x2, y1 <= y2
    within [0, 1] (up to 0.01). Without ``check_boxes`` any finite box is yielded: the evaluator scores
    detectors' odd boxes as the official evaluator does. Empty lines are skipped.
    """
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) not in (7, 8):
                raise AnnotationFormatError(
                    f"{path}:{line}: expected 7 or 8 comma-separated columns "
                    f"(video_id,timestamp,x1,y1,x2,y2,action_id[,person_id or score]), got {len(fields)}: "
                    f"{','.join(fields)!r}"
                )
            try:  # fast path; the slow one below names the bad field
                timestamp = int(fields[1])
                x1, y1, x2, y2 = float(fields[2]), float(fields[3]), float(fields[4]), float(fields[5])
                action_id = int(fields[6]) if fields[6] else None
                last = float(fields[7]) if len(fields) == 8 and fields[7] else None
                # One test for all five numbers: a sum with a NaN or an infinity is not finite.
                if not math.isfinite(x1 + y1 + x2 + y2 + (last or 0.0)):
                    raise ValueError
            except ValueError:
                timestamp, x1, y1, x2, y2, action_id, last = _parse_fields_slowly(fields, path, line)
            if check_boxes and not _is_normalized_box(x1, y1, x2, y2):
                raise AnnotationFormatError(
                    f"{path}:{line}: box {x1},{y1},{x2},{y2} is not x1 <= x2, y1 <= y2{_BOX_HINT}"
                )
            yield BoxRow(line, fields[0], timestamp, x1, y1, x2, y2, action_id, last)


def read_exclusions(path: str | None) -> set[str]:
    """Read ``ava_val_excluded_timestamps_v2.2.csv`` into a set of image keys (empty set for None/"")."""
    excluded: set[str] = set()
    if not path:
        return excluded
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != 2:
                raise AnnotationFormatError(
                    f"{path}:{reader.line_num}: expected 2 columns (video_id,timestamp), got {len(fields)}: "
                    f"{','.join(fields)!r}"
                )
            timestamp = _parse_int(fields[1], path, reader.line_num, "the timestamp (column 2)")
            excluded.add(make_image_key(fields[0], timestamp))
    return excluded


# A block's body may hold quoted names with any character, braces included.
_BLOCK = re.compile(r'\b(item|label)\s*\{((?:[^{}"]|"[^"]*")*)\}')
_NAME_FIELD = re.compile(r'(?<![A-Za-z_])name\s*:\s*"([^"]*)"')
_ID_FIELD = re.compile(r"(?<![A-Za-z_])(id|label_id)\s*:\s*([^\s}]+)")
_COMMENT = re.compile(r"#[^\n]*")


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _check_outside_blocks(text: str, start: int, end: int, path: str) -> None:
    """Refuse anything but blanks and ``#`` comments in ``text[start:end]``, the text between two entries:
    an unclosed or misspelt block would otherwise drop its class silently."""
    gap = _COMMENT.sub(lambda comment: " " * len(comment.group()), text[start:end])
    stray = len(gap) - len(gap.lstrip())
    if stray < len(gap):
        raise AnnotationFormatError(
            f"{path}:{_line_of(text, start + stray)}: unexpected {gap.strip().split()[0]!r} outside an entry; "
            'a label map is entries like item { name: "stand" id: 12 }, each with its closing brace'
        )


def _read_entry(block: re.Match, path: str, line: int) -> tuple[int, str]:
    """The ``(id, name)`` of one ``item`` or ``label`` block."""
    name = _NAME_FIELD.search(block.group(2))
    # The id is looked for outside the quoted name, which may contain anything.
    id_field = _ID_FIELD.search(_NAME_FIELD.sub("", block.group(2)))
    if name is None or id_field is None:
        missing = "name: \"...\"" if name is None else "id: N"
        raise AnnotationFormatError(f"{path}:{line}: label map entry without {missing}")
    action_id = _parse_int(id_field.group(2), path, line, id_field.group(1))
    if action_id < 1:
        raise AnnotationFormatError(f"{path}:{line}: class ids are 1-based, got {action_id}")
    return action_id, name.group(1)


def read_label_map(path: str) -> dict[int, str]:
    """Read a pbtxt label map into ``{action_id: name}`` in file order.

    Accepts ``item { name: "..." id: N }`` (ActivityNet evaluation list) and
    ``label { name: "..." label_id: N label_type: ... }`` (full AVA action list), one field per line or
    all on one line, with ``#`` comments between entries. Other fields (``label_type``, ``display_name``)
    are ignored. Raises :class:`AnnotationFormatError` for an entry without name or id, a non-integer or
    non-positive id, an id or a name listed twice (results are reported per name), text outside the
    entries (an unclosed block), or a file without entries.
    """
    with _open_text(path) as handle:
        text = handle.read()
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        raise AnnotationFormatError(
            f"{path}: no label map entries found; expected blocks like item {{ name: \"stand\" id: 12 }}"
        )
    label_map: dict[int, str] = {}
    ids_by_name: dict[str, int] = {}
    for block, previous_end in zip(blocks, [0] + [block.end() for block in blocks]):
        _check_outside_blocks(text, previous_end, block.start(), path)
        line = _line_of(text, block.start())
        action_id, name = _read_entry(block, path, line)
        if action_id in label_map:
            raise AnnotationFormatError(f"{path}:{line}: class id {action_id} is listed twice")
        if name in ids_by_name:
            raise AnnotationFormatError(
                f"{path}:{line}: class name {name!r} is listed twice (ids {ids_by_name[name]} and {action_id})"
            )
        label_map[action_id] = name
        ids_by_name[name] = action_id
    _check_outside_blocks(text, blocks[-1].end(), len(text), path)
    return label_map
