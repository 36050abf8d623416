"""Frame-level AVA action-detection mAP, computed as ActivityNet's official AVA evaluator does.

The protocol of ``get_ava_performance.py``; the numbers it prints are reproduced on any input the file
readers accept. The readers refuse what the official script would crash on or score by accident: NaN or
infinite numbers, detections without a score, inverted ground-truth boxes, an empty ground-truth file.
Detections' boxes outside [0, 1] or inverted are scored as the official script scores them (steps 4, 5),
with one warning that counts them (``strict_boxes`` refuses them instead):

1. Only the label map's classes count: rows with other action ids are dropped from ground truth and
   detections (the v2.2 map lists 60 of the 80 ids).
2. Rows are grouped per keyframe, key ``"video_id,%04d"``; keys of the exclusion file are dropped from both.
3. Per key at most 50 detections are kept, the highest scores across classes: a min-heap of
   ``(score, action_id, y1, x1, y2, x2)`` tuples where a newcomer replaces the minimum only with a strictly
   higher score; the kept entries are then sorted by descending score (stable over the heap's order).
   Ground truth goes through the same ordering with column 8 (the person id) as its score.
4. Detections with an inverted or empty box (``x1 >= x2`` or ``y1 >= y2``) are then ignored: they
   neither match nor count as false positives, but they took their place among the 50 of step 3.
5. Per key and class, each detection in that order is matched to the ground-truth box of highest IoU
   (the first one on ties), computed on the coordinates as given (a box outside [0, 1] is not clipped).
   IoU >= 0.5 with a box not matched before makes a true positive; anything else, including a second
   detection of an already matched box, is a false positive.
6. Per class, the detections of all keys (concatenated in the detection file's key order) are ranked by
   ``np.argsort(scores)[::-1]``; precision and recall follow, and PASCAL VOC all-point AP is the area under
   the precision envelope (precision made non-increasing).
7. mAP is the mean AP over the label-map classes that have ground truth.

Besides the numbers, the evaluator reports the classic mistakes it sees: scoring on all 80 ids, detections
that are the ground-truth boxes, duplicate rows, coordinates outside [0, 1], scores outside [0, 1], action
ids outside 1..80, and keyframes present in one file and not the other.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from iopath.common.file_io import g_pathmgr

from hiera_video.evaluation.ava_annotations import (
    AVA_EVALUATED_ACTION_IDS,
    AVA_NUM_ACTION_IDS,
    AnnotationFormatError,
    BoxRow,
    iter_box_rows,
    make_image_key,
    read_exclusions,
    read_label_map,
)
from hiera_video.utils.json_io import dumps_strict

logger = logging.getLogger(__name__)

# The official evaluator keeps at most this many detections per keyframe.
MAX_DETECTIONS_PER_KEY = 50
IOU_THRESHOLD = 0.5
# Warn that detections are ground-truth boxes when at least this fraction of them is.
_GROUNDTRUTH_BOX_FRACTION = 0.9
# Lines quoted per kind of problem.
_QUOTED_LINES = 3
_ODD_DETECTION_BOXES = (
    "detections with a box outside [0, 1] or with x1 >= x2 or y1 >= y2, scored as the official evaluator "
    "scores them (inverted and empty boxes ignored, the others matched as given; ava_eval --strict refuses "
    "them)"
)


@dataclass
class KeyframeBoxes:
    """Boxes of one keyframe in evaluation order: ``boxes`` [N, 4] as (y1, x1, y2, x2), ids and scores [N]."""

    boxes: np.ndarray
    action_ids: np.ndarray
    scores: np.ndarray


@dataclass
class AvaEvaluationResult:
    """Frame-mAP and per-class AP (label-map classes with ground truth, in label-map order), with what
    the evaluator noticed about its inputs."""

    mean_ap: float
    per_class_ap: dict[str, float]
    num_groundtruth: dict[str, int]
    classes_without_groundtruth: list[str]
    num_groundtruth_keys: int
    num_detection_keys: int
    groundtruth_keys_without_detections: list[str] = field(default_factory=list)
    detection_keys_without_groundtruth: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Keyframes that could not be decoded in testing: ``{"keyframe": "video_id,timestamp", "error"}``.
    failed_keyframes: list[dict] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        """The ``--json`` content: ``{"mAP": ..., "per_class": {name: AP}, ...}`` with AP values in [0, 1]."""
        return {
            "mAP": self.mean_ap,
            "per_class": self.per_class_ap,
            "num_groundtruth": self.num_groundtruth,
            "classes_without_groundtruth": self.classes_without_groundtruth,
            "num_groundtruth_keys": self.num_groundtruth_keys,
            "num_detection_keys": self.num_detection_keys,
            "groundtruth_keys_without_detections": self.groundtruth_keys_without_detections,
            "detection_keys_without_groundtruth": self.detection_keys_without_groundtruth,
            "warnings": self.warnings,
            "num_failed_keyframes": len(self.failed_keyframes),
            "failed_keyframes": self.failed_keyframes,
        }


class RowProblems:
    """Counts the rows of one file, and its suspicious rows per kind, which it turns into warnings quoting
    the first lines."""

    def __init__(self, source: str):
        self.source = source
        self.num_rows = 0
        self.lines: dict[str, list[int]] = {}
        self.counts: dict[str, int] = {}

    def add(self, kind: str, line: int) -> None:
        """Count one row of ``kind`` at ``line``."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        quoted = self.lines.setdefault(kind, [])
        if len(quoted) < _QUOTED_LINES:
            quoted.append(line)

    def messages(self) -> list[str]:
        """One warning per kind: ``"<file>: <count> <kind>, at <file>:a, <file>:b"`` (``first at`` when
        there are more)."""
        return [
            f"{self.source}: {self.counts[kind]} {kind}, "
            f"{'first at' if self.counts[kind] > len(self.lines[kind]) else 'at'} "
            + ", ".join(f"{self.source}:{line}" for line in self.lines[kind])
            for kind in self.counts
        ]


def _is_regular_box(row: BoxRow) -> bool:
    """Whether ``0 <= x1 < x2 <= 1`` and ``0 <= y1 < y2 <= 1``."""
    return 0.0 <= row.x1 < row.x2 <= 1.0 and 0.0 <= row.y1 < row.y2 <= 1.0


def _check_detection(row: BoxRow, problems: RowProblems, strict_boxes: bool) -> None:
    """Refuse a detection without score (or, ``strict_boxes``, with an odd box); note odd boxes and scores."""
    if row.last_column is None:
        raise AnnotationFormatError(
            f"{problems.source}:{row.line}: no score; detection rows are "
            "video_id,timestamp,x1,y1,x2,y2,action_id,score (is this a ground-truth file?)"
        )
    if not 0.0 <= row.last_column <= 1.0:
        problems.add("scores outside [0, 1], ranked as given (AP depends only on the ranking)", row.line)
    if _is_regular_box(row):
        return
    if strict_boxes:
        raise AnnotationFormatError(
            f"{problems.source}:{row.line}: box {row.x1},{row.y1},{row.x2},{row.y2} is not 0 <= x1 < x2 <= 1 "
            "and 0 <= y1 < y2 <= 1 (strict box checking; without it the box is scored as the official "
            "evaluator scores it)"
        )
    problems.add(_ODD_DETECTION_BOXES, row.line)


def _check_groundtruth_row(row: BoxRow, problems: RowProblems) -> None:
    """Refuse an inverted ground-truth box (the official evaluator crashes on one); note coordinates outside
    [0, 1]."""
    if row.x1 > row.x2 or row.y1 > row.y2:
        raise AnnotationFormatError(
            f"{problems.source}:{row.line}: ground-truth box {row.x1},{row.y1},{row.x2},{row.y2} has x2 < x1 or "
            "y2 < y1; columns are video_id,timestamp,x1,y1,x2,y2"
        )
    if not (0.0 <= min(row.x1, row.y1) and max(row.x2, row.y2) <= 1.0):
        problems.add("rows with coordinates outside [0, 1] (AVA boxes are normalized)", row.line)


def _is_scored(
    row: BoxRow, class_ids: set[int], problems: RowProblems, is_detection_file: bool, strict_boxes: bool
) -> bool:
    """Whether ``row`` is of a label-map class; raises :class:`AnnotationFormatError` for a row that cannot
    be scored and notes suspicious ones in ``problems``."""
    if row.action_id is None:
        raise AnnotationFormatError(
            f"{problems.source}:{row.line}: empty action_id; detections and ground truth need one per row "
            "(predicted-box files are proposals, not detections)"
        )
    if row.action_id not in class_ids:
        if not 1 <= row.action_id <= AVA_NUM_ACTION_IDS:
            problems.add(f"rows with action ids outside 1..{AVA_NUM_ACTION_IDS}, skipped (ids are 1-based)", row.line)
        return False
    if is_detection_file:
        _check_detection(row, problems, strict_boxes)
    else:
        _check_groundtruth_row(row, problems)
    return True


def collect_keyframe_boxes(
    rows: Iterable[BoxRow],
    class_ids: set[int],
    capacity: int = 0,
    problems: RowProblems | None = None,
    is_detection_file: bool = False,
    strict_boxes: bool = False,
) -> dict[str, KeyframeBoxes]:
    """Group rows of the label map's classes per keyframe key, keeping at most ``capacity`` (0: all)
    highest-scoring rows per key, in descending score order (the official reader's order).

    A row's score is its column 8 (1.0 when absent in ground truth, where it is the person id). Rows of
    other classes are skipped. :class:`AnnotationFormatError` is raised for a row without action id, an
    inverted ground-truth box, a detection without score and (``strict_boxes``) a detection whose box is
    not ``0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1``; odd but scorable rows are noted in ``problems``.
    """
    problems = problems if problems is not None else RowProblems("boxes")
    heaps: dict[str, list[tuple]] = {}
    for row in rows:
        problems.num_rows += 1
        if not _is_scored(row, class_ids, problems, is_detection_file, strict_boxes):
            continue
        score = 1.0 if row.last_column is None else row.last_column
        entry = (score, row.action_id, row.y1, row.x1, row.y2, row.x2)
        heap = heaps.setdefault(make_image_key(row.video_id, row.timestamp), [])
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, entry)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, entry)
    keyframes = {}
    for key, heap in heaps.items():
        ordered = np.array(sorted(heap, key=lambda entry: -entry[0]), dtype=float).reshape(-1, 6)
        keyframes[key] = KeyframeBoxes(ordered[:, 2:6], ordered[:, 1].astype(int), ordered[:, 0])
    return keyframes


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU [N, M] of boxes given as (y1, x1, y2, x2) (or (x1, y1, x2, y2): IoU is symmetric).

    Areas are ``(y2 - y1) * (x2 - x1)`` without the +1 of pixel-index conventions.
    """
    heights = np.maximum(
        0.0, np.minimum(boxes1[:, None, 2], boxes2[None, :, 2]) - np.maximum(boxes1[:, None, 0], boxes2[None, :, 0])
    )
    widths = np.maximum(
        0.0, np.minimum(boxes1[:, None, 3], boxes2[None, :, 3]) - np.maximum(boxes1[:, None, 1], boxes2[None, :, 1])
    )
    intersection = heights * widths
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    return intersection / (area1[:, None] + area2[None, :] - intersection)


def match_detections(
    detection_boxes: np.ndarray, groundtruth_boxes: np.ndarray, iou_threshold: float = IOU_THRESHOLD
) -> np.ndarray:
    """True-positive flags [N] of one class's detections (in descending score order) on one keyframe.

    Each detection goes to the ground-truth box of highest IoU (first on ties); it is a true positive when
    that IoU reaches ``iou_threshold`` and the box was not matched by an earlier detection.
    """
    is_true_positive = np.zeros(len(detection_boxes), dtype=bool)
    if len(groundtruth_boxes) == 0 or len(detection_boxes) == 0:
        return is_true_positive
    iou = box_iou(detection_boxes, groundtruth_boxes)
    best_groundtruth = iou.argmax(axis=1)
    is_matched = np.zeros(len(groundtruth_boxes), dtype=bool)
    for index, groundtruth in enumerate(best_groundtruth):
        if iou[index, groundtruth] >= iou_threshold and not is_matched[groundtruth]:
            is_true_positive[index] = True
            is_matched[groundtruth] = True
    return is_true_positive


def compute_precision_recall(
    scores: np.ndarray, is_true_positive: np.ndarray, num_groundtruth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, ranked by ``np.argsort(scores)[::-1]``."""
    if num_groundtruth < 1:
        raise ValueError("precision and recall need at least one ground-truth box")
    if int(np.sum(is_true_positive)) > num_groundtruth:
        raise ValueError(f"{int(np.sum(is_true_positive))} true positives for {num_groundtruth} ground-truth boxes")
    order = np.argsort(scores)[::-1]
    true_positives = np.cumsum(is_true_positive[order].astype(int))
    false_positives = np.cumsum(1 - is_true_positive[order].astype(int))
    precision = true_positives.astype(float) / (true_positives + false_positives)
    recall = true_positives.astype(float) / num_groundtruth
    return precision, recall


def voc_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """PASCAL VOC all-point AP: area under the precision envelope over recall (0.0 without detections)."""
    if precision.size == 0:
        return 0.0
    recall = np.concatenate([[0.0], recall, [1.0]])
    # Precision made non-increasing from the right: the best precision at this recall or beyond.
    envelope = np.maximum.accumulate(np.concatenate([[0.0], precision, [0.0]])[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * envelope[steps]))


def _check_groundtruth_remains(groundtruth: dict[str, KeyframeBoxes], problems: RowProblems) -> None:
    """Refuse an empty ground truth, or one without a box of a label-map class after exclusions (no class
    to average)."""
    if problems.num_rows == 0:
        raise AnnotationFormatError(
            f"{problems.source}: no ground-truth rows (empty file); expected rows "
            "video_id,timestamp,x1,y1,x2,y2,action_id,person_id such as ava_val_v2.2.csv"
        )
    if not groundtruth:
        raise AnnotationFormatError(
            f"{problems.source}: no ground-truth box of a label-map class remains after exclusions; check that "
            "the label map and ground truth belong to the same AVA version and split"
        )


def _count_duplicates(keyframes: dict[str, KeyframeBoxes]) -> int:
    duplicates = 0
    for frame in keyframes.values():
        rows = np.column_stack([frame.boxes, frame.action_ids])
        duplicates += len(rows) - len(np.unique(rows, axis=0))
    return duplicates


def _fraction_on_groundtruth_boxes(
    detections: dict[str, KeyframeBoxes], groundtruth: dict[str, KeyframeBoxes]
) -> float:
    """Fraction of distinct detection boxes equal (to 1e-3) to a ground-truth box of the same keyframe."""
    on_groundtruth, total = 0, 0
    for key, frame in detections.items():
        boxes = {tuple(box) for box in np.round(frame.boxes, 3)}
        total += len(boxes)
        if key in groundtruth:
            on_groundtruth += len(boxes & {tuple(box) for box in np.round(groundtruth[key].boxes, 3)})
    return on_groundtruth / total if total else 0.0


def _input_warnings(
    label_map: dict[int, str], groundtruth: dict[str, KeyframeBoxes], detections: dict[str, KeyframeBoxes]
) -> list[str]:
    warnings = []
    if len(label_map) > len(AVA_EVALUATED_ACTION_IDS):
        warnings.append(
            f"the label map lists {len(label_map)} classes; AVA v2.2 results are reported on the 60 classes of "
            "ava_action_list_v2.2_for_activitynet_2019.pbtxt, so this mAP is not comparable to published ones"
        )
    if detections and _fraction_on_groundtruth_boxes(detections, groundtruth) >= _GROUNDTRUTH_BOX_FRACTION:
        warnings.append(
            "the detections use the ground-truth boxes; the AVA protocol evaluates detector proposals "
            "(AVA.TEST_PREDICT_BOX_LISTS, e.g. ava_val_predicted_boxes.csv), which give a lower mAP"
        )
    for name, keyframes in (("ground truth", groundtruth), ("detections", detections)):
        duplicates = _count_duplicates(keyframes)
        if duplicates:
            warnings.append(f"{name}: {duplicates} duplicate rows (same keyframe, box and action)")
    return warnings


def evaluate_ava(
    label_map: dict[int, str],
    groundtruth_rows: Iterable[BoxRow],
    detection_rows: Iterable[BoxRow],
    excluded_keys: set[str] | None = None,
    groundtruth_source: str = "ground truth",
    detections_source: str = "detections",
    strict_boxes: bool = False,
) -> AvaEvaluationResult:
    """Frame-level mAP at IoU 0.5 of ``detection_rows`` against ``groundtruth_rows`` (see module doc).

    Raises :class:`AnnotationFormatError` for rows that cannot be scored (see
    :func:`collect_keyframe_boxes`; ``strict_boxes`` refuses detections with boxes outside [0, 1] or
    inverted), an empty ground truth, or one without a label-map class after exclusions.
    """
    excluded_keys = excluded_keys or set()
    class_ids = set(label_map)
    groundtruth_problems = RowProblems(groundtruth_source)
    detection_problems = RowProblems(detections_source)
    groundtruth = collect_keyframe_boxes(groundtruth_rows, class_ids, 0, groundtruth_problems)
    detections = collect_keyframe_boxes(
        detection_rows, class_ids, MAX_DETECTIONS_PER_KEY, detection_problems, True, strict_boxes
    )
    groundtruth = {key: frame for key, frame in groundtruth.items() if key not in excluded_keys}
    detections = {key: frame for key, frame in detections.items() if key not in excluded_keys}
    _check_groundtruth_remains(groundtruth, groundtruth_problems)

    warnings = _input_warnings(label_map, groundtruth, detections)
    warnings += groundtruth_problems.messages() + detection_problems.messages()
    scores_per_class, true_positives_per_class = _label_detections(groundtruth, detections)
    num_groundtruth_per_id = {action_id: 0 for action_id in label_map}
    for frame in groundtruth.values():
        for action_id in frame.action_ids:
            num_groundtruth_per_id[int(action_id)] += 1

    # AP per id 1..max id, NaN without ground truth, averaged with nanmean as the official evaluator does.
    average_precisions = np.full(max(label_map), np.nan)
    for action_id, num_groundtruth in num_groundtruth_per_id.items():
        if num_groundtruth == 0:
            continue
        scores = np.concatenate(scores_per_class.get(action_id, [np.zeros(0)]))
        is_true_positive = np.concatenate(true_positives_per_class.get(action_id, [np.zeros(0, dtype=bool)]))
        precision, recall = compute_precision_recall(scores, is_true_positive, num_groundtruth)
        average_precisions[action_id - 1] = voc_average_precision(precision, recall)
    for message in warnings:
        logger.warning(message)
    return AvaEvaluationResult(
        mean_ap=float(np.nanmean(average_precisions)),
        per_class_ap={
            name: float(average_precisions[i - 1]) for i, name in label_map.items() if num_groundtruth_per_id[i]
        },
        num_groundtruth={name: num_groundtruth_per_id[i] for i, name in label_map.items()},
        classes_without_groundtruth=[name for i, name in label_map.items() if not num_groundtruth_per_id[i]],
        num_groundtruth_keys=len(groundtruth),
        num_detection_keys=len(detections),
        groundtruth_keys_without_detections=[key for key in groundtruth if key not in detections],
        detection_keys_without_groundtruth=[key for key in detections if key not in groundtruth],
        warnings=warnings,
    )


def _label_detections(
    groundtruth: dict[str, KeyframeBoxes], detections: dict[str, KeyframeBoxes]
) -> tuple[dict[int, list[np.ndarray]], dict[int, list[np.ndarray]]]:
    """Per class, the scores and true-positive flags of each keyframe's detections, in key order."""
    scores_per_class: dict[int, list[np.ndarray]] = {}
    true_positives_per_class: dict[int, list[np.ndarray]] = {}
    empty = KeyframeBoxes(np.zeros((0, 4)), np.zeros(0, dtype=int), np.zeros(0))
    for key, frame in detections.items():
        valid = (frame.boxes[:, 0] < frame.boxes[:, 2]) & (frame.boxes[:, 1] < frame.boxes[:, 3])
        boxes, action_ids, scores = frame.boxes[valid], frame.action_ids[valid], frame.scores[valid]
        truth = groundtruth.get(key, empty)
        for action_id in np.unique(action_ids):
            selected = action_ids == action_id
            flags = match_detections(boxes[selected], truth.boxes[truth.action_ids == action_id])
            scores_per_class.setdefault(int(action_id), []).append(scores[selected])
            true_positives_per_class.setdefault(int(action_id), []).append(flags)
    return scores_per_class, true_positives_per_class


def evaluate_ava_files(
    label_map_path: str,
    groundtruth_path: str,
    detections_path: str,
    exclusions_path: str | None = None,
    strict_boxes: bool = False,
) -> AvaEvaluationResult:
    """:func:`evaluate_ava` on the official files: label map pbtxt, ground-truth CSV, detections CSV and
    (optionally) excluded timestamps CSV.

    Ground-truth boxes must be normalized (:func:`iter_box_rows`); detection boxes may be anything finite,
    scored as the official evaluator scores them unless ``strict_boxes``."""
    return evaluate_ava(
        read_label_map(label_map_path),
        iter_box_rows(groundtruth_path),
        iter_box_rows(detections_path, check_boxes=False),
        read_exclusions(exclusions_path),
        groundtruth_source=groundtruth_path,
        detections_source=detections_path,
        strict_boxes=strict_boxes,
    )


def format_results(result: AvaEvaluationResult) -> str:
    """A printable report: per-class AP lines, classes without ground truth, then the mAP."""
    width = max((len(name) for name in result.per_class_ap), default=4)
    lines = [
        f"{name:<{width}}  AP {ap:.4f}  (gt {result.num_groundtruth[name]})" for name, ap in result.per_class_ap.items()
    ]
    if result.classes_without_groundtruth:
        lines.append(f"no ground truth (not averaged): {', '.join(result.classes_without_groundtruth)}")
    lines.append(
        f"frame-mAP@0.5IoU: {result.mean_ap:.6f} over {len(result.per_class_ap)} classes, "
        f"{result.num_groundtruth_keys} ground-truth keyframes, {result.num_detection_keys} with detections"
    )
    if result.groundtruth_keys_without_detections:
        lines.append(f"{len(result.groundtruth_keys_without_detections)} ground-truth keyframes have no detections")
    return "\n".join(lines)


def write_json(result: AvaEvaluationResult, path: str) -> None:
    """Write :meth:`AvaEvaluationResult.to_json_dict` to ``path``."""
    with g_pathmgr.open(path, "w") as handle:
        handle.write(dumps_strict(result.to_json_dict(), indent=2))


def detection_rows_from_scores(
    video_ids: Sequence[str],
    timestamps: Sequence[int],
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: Iterable[int] | None = None,
) -> list[tuple[str, int, float, float, float, float, int, float]]:
    """Detection rows ``(video_id, timestamp, x1, y1, x2, y2, action_id, score)`` from a model's outputs.

    ``boxes`` [K, 4] are normalized (x1, y1, x2, y2); ``scores`` [K, 80] are per-id probabilities (column
    ``id - 1``). One row per box and class of ``class_ids`` (default: all 80 ids).
    """
    boxes = np.asarray(boxes, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.ndim != 2 or len(scores) != len(boxes):
        raise ValueError(f"expected boxes [K, 4] and scores [K, C], got {boxes.shape} and {scores.shape}")
    if not len(video_ids) == len(timestamps) == len(boxes):
        raise ValueError("video_ids, timestamps and boxes must have one entry per box")
    ids = sorted(class_ids) if class_ids is not None else range(1, scores.shape[1] + 1)
    return [
        (video_ids[k], int(timestamps[k]), *map(float, boxes[k]), action_id, float(scores[k, action_id - 1]))
        for k in range(len(boxes))
        for action_id in ids
    ]


def write_detections_csv(path: str, rows: Iterable[tuple]) -> None:
    """Write detection rows in the official format ``video_id,%04d,x1,y1,x2,y2,action_id,score``.

    Boxes get 3 decimals (as the AVA files), scores 6 (fewer would create ties that change the ranking).
    """
    with g_pathmgr.open(path, "w") as handle:
        for video_id, timestamp, x1, y1, x2, y2, action_id, score in rows:
            handle.write(
                f"{video_id},{int(timestamp):04d},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},{action_id},{score:.6f}\n"
            )
