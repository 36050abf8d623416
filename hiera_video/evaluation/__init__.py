"""Evaluation: AVA v2.2 frame-level mAP (the official ActivityNet protocol) and its annotation readers.

This package imports numpy only, so ``tools/ava_eval.py`` starts fast; the torch-side testing glue
(model outputs -> detections CSV -> metrics) is :mod:`hiera_video.evaluation.ava_testing`.
"""
from hiera_video.evaluation.ava_annotations import (
    AVA_EVALUATED_ACTION_IDS,
    AnnotationFormatError,
    BoxRow,
    iter_box_rows,
    make_image_key,
    read_exclusions,
    read_label_map,
)
from hiera_video.evaluation.ava_eval import (
    AvaEvaluationResult,
    compute_precision_recall,
    detection_rows_from_scores,
    evaluate_ava,
    evaluate_ava_files,
    format_results,
    voc_average_precision,
    write_detections_csv,
    write_json,
)

__all__ = [
    "AVA_EVALUATED_ACTION_IDS",
    "AnnotationFormatError",
    "AvaEvaluationResult",
    "BoxRow",
    "compute_precision_recall",
    "detection_rows_from_scores",
    "evaluate_ava",
    "evaluate_ava_files",
    "format_results",
    "iter_box_rows",
    "make_image_key",
    "read_exclusions",
    "read_label_map",
    "voc_average_precision",
    "write_detections_csv",
    "write_json",
]
