"""AVA testing glue for the engine: model outputs -> official detections CSV -> metrics, JSON and chart.

    rows, failed = predict_ava_detections(model, loader)          # one process's share
    result = evaluate_ava_predictions(cfg, rows, cfg.OUTPUT_DIR, failed)

In distributed testing, gather every process's ``rows`` and ``failed`` lists on the main process first
(the dataset's keyframes are disjoint across a ``DistributedSampler``'s shards apart from its padding;
duplicated rows are removed here).
"""
from __future__ import annotations

import logging
import os
from typing import Iterable, Sequence

import torch
from iopath.common.file_io import g_pathmgr

from hiera_video.evaluation.ava_annotations import iter_box_rows, read_exclusions, read_label_map
from hiera_video.evaluation.ava_eval import (
    AvaEvaluationResult,
    detection_rows_from_scores,
    evaluate_ava,
    write_detections_csv,
    write_json,
)

logger = logging.getLogger(__name__)

DETECTIONS_FILE = "ava_detections.csv"
METRICS_FILE = "ava_metrics.json"
CHART_FILE = "ava_per_class_ap.png"


@torch.no_grad()
def predict_ava_detections(
    model: torch.nn.Module, loader: Iterable[dict], device: torch.device | str = "cpu"
) -> tuple[list[tuple], list[dict]]:
    """Run ``model(clips, boxes)`` over an AVA test loader; return detection rows for all 80 ids (sigmoid
    scores, boxes as in the proposal file) and the keyframes that failed to decode."""
    model.eval()
    rows: list[tuple] = []
    failed: list[dict] = []
    for batch in loader:
        failed.extend(batch["failed"])
        if len(batch["boxes"]) == 0:
            continue
        logits = model(batch["clip"].to(device), batch["boxes"].to(device))
        scores = torch.sigmoid(logits.float()).cpu().numpy()
        boxes = batch["original_boxes"].numpy()
        rows.extend(detection_rows_from_scores(batch["video_ids"], batch["timestamps"], boxes, scores))
    return rows, failed


def evaluate_ava_predictions(
    cfg,
    rows: Sequence[tuple],
    output_dir: str,
    failed: Sequence[dict] = (),
) -> AvaEvaluationResult:
    """Write ``output_dir/ava_detections.csv`` (rows of the label map's classes), evaluate it against
    ``AVA.GROUNDTRUTH_FILE`` with ``AVA.LABEL_MAP_FILE`` and ``AVA.EXCLUSION_FILE`` (all under
    ``AVA.ANNOTATION_DIR``), write ``ava_metrics.json`` and, when matplotlib is installed,
    ``ava_per_class_ap.png``.

    Keyframes that failed to decode are listed in the result's warnings and JSON; their ground truth counts
    as missed.
    """
    annotations = cfg.AVA.ANNOTATION_DIR
    label_map = read_label_map(os.path.join(annotations, cfg.AVA.LABEL_MAP_FILE))
    g_pathmgr.mkdirs(output_dir)
    detections_path = os.path.join(output_dir, DETECTIONS_FILE)
    # Only the label map's classes are scored, so only they are written (60 of 80 ids: a quarter smaller);
    # dict.fromkeys drops rows repeated by a distributed sampler's padding and keeps the order.
    write_detections_csv(detections_path, (row for row in dict.fromkeys(rows) if row[6] in label_map))
    groundtruth_path = os.path.join(annotations, cfg.AVA.GROUNDTRUTH_FILE)
    exclusions = os.path.join(annotations, cfg.AVA.EXCLUSION_FILE) if cfg.AVA.EXCLUSION_FILE else None
    result = evaluate_ava(
        label_map,
        iter_box_rows(groundtruth_path),
        iter_box_rows(detections_path),
        read_exclusions(exclusions),
        groundtruth_source=groundtruth_path,
        detections_source=detections_path,
    )
    failed_keys = sorted({f"{item['video_id']},{int(item['timestamp']):04d}" for item in failed})
    if failed_keys:
        result.warnings.append(
            f"{len(failed_keys)} keyframes failed to decode; their ground truth counts as missed: "
            + ", ".join(failed_keys[:20]) + (", ..." if len(failed_keys) > 20 else "")
        )
        logger.warning(result.warnings[-1])
    write_json(result, os.path.join(output_dir, METRICS_FILE))
    _save_chart_if_possible(result, os.path.join(output_dir, CHART_FILE))
    return result


def _save_chart_if_possible(result: AvaEvaluationResult, path: str) -> None:
    from hiera_video.evaluation.plots import save_per_class_ap_chart

    try:
        save_per_class_ap_chart(result, path)
    except ImportError as error:
        logger.warning("per-class AP chart skipped: %s", error)
