"""AVA testing glue for the engine: model outputs -> official detections CSV -> metrics, JSON and chart.

    predictions = predict_ava_detections(model, loader)          # one process's share
    result = evaluate_ava_predictions(cfg, predictions, cfg.OUTPUT_DIR)

Predictions are kept per box as arrays (scores [K, 80] float32: ~48 MB for AVA val's ~150k proposals)
and turned into CSV rows only while the file is written; a list of row tuples would take gigabytes. In
distributed testing, gather every process's predictions and :meth:`AvaPredictions.concat` them on the main
process first (a ``DistributedSampler``'s shards are disjoint apart from its padding; keyframes repeated
by the padding are written once).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Sequence

import torch
from iopath.common.file_io import g_pathmgr

from hiera_video.datasets.batches import AvaBatch
from hiera_video.evaluation.ava_annotations import AVA_NUM_ACTION_IDS, iter_box_rows, read_exclusions, read_label_map
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


@dataclass
class AvaPredictions:
    """Per-box outputs of AVA testing and the keyframes that failed.

    ``keyframes`` [K] is the dataset index of each box's keyframe, ``video_ids`` / ``timestamps`` [K] its
    key, ``boxes`` [K, 4] the box as in the proposal file (normalized x1, y1, x2, y2) and ``scores`` [K, 80]
    the sigmoid score of every action id (column ``id - 1``); ``failed`` lists ``{"video_id", "timestamp",
    "error", "index"}`` of keyframes that could not be decoded.
    """

    keyframes: torch.Tensor
    video_ids: list[str]
    timestamps: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    failed: list[dict]

    @classmethod
    def empty(cls) -> "AvaPredictions":
        """No boxes and no failures."""
        return cls(torch.zeros(0, dtype=torch.long), [], torch.zeros(0, dtype=torch.long), torch.zeros(0, 4),
                   torch.zeros(0, AVA_NUM_ACTION_IDS), [])

    @classmethod
    def concat(cls, parts: Sequence["AvaPredictions"]) -> "AvaPredictions":
        """All boxes and failures of ``parts``, in order."""
        parts = [cls.empty(), *parts]
        return cls(torch.cat([p.keyframes for p in parts]), [v for p in parts for v in p.video_ids],
                   torch.cat([p.timestamps for p in parts]), torch.cat([p.boxes for p in parts]),
                   torch.cat([p.scores for p in parts]), [f for p in parts for f in p.failed])

    def state(self) -> dict[str, Any]:
        """The fields as a dict (for partial test files); :meth:`from_state` reads it back."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "AvaPredictions":
        """Predictions from :meth:`state`."""
        return cls(**state)

    def without_repeats(self) -> "AvaPredictions":
        """Each (keyframe, box) once and each failed keyframe once: a distributed sampler pads its shards
        with repeated keyframes."""
        seen: set[tuple] = set()
        keep = []
        for key in zip(self.keyframes.tolist(), map(tuple, self.boxes.tolist())):
            keep.append(key not in seen)
            seen.add(key)
        mask = torch.tensor(keep, dtype=torch.bool)
        failed = list({(f["video_id"], int(f["timestamp"])): f for f in self.failed}.values())
        return AvaPredictions(self.keyframes[mask], [v for v, k in zip(self.video_ids, keep) if k],
                              self.timestamps[mask], self.boxes[mask], self.scores[mask], failed)

    def rows(self, class_ids: Iterable[int], chunk: int = 4096) -> Iterator[tuple]:
        """Detection rows ``(video_id, timestamp, x1, y1, x2, y2, action_id, score)`` of ``class_ids``, made
        ``chunk`` boxes at a time."""
        class_ids = sorted(class_ids)
        for start in range(0, len(self.keyframes), chunk):
            part = slice(start, start + chunk)
            yield from detection_rows_from_scores(self.video_ids[part], self.timestamps[part].tolist(),
                                                  self.boxes[part].numpy(), self.scores[part].numpy(), class_ids)


@torch.no_grad()
def predict_ava_batch(model: torch.nn.Module, batch: AvaBatch, device: torch.device | str = "cpu") -> AvaPredictions:
    """The predictions of one AVA test batch (see :func:`hiera_video.datasets.ava.collate_ava_batch`)."""
    if len(batch.boxes) == 0:
        return replace(AvaPredictions.empty(), failed=list(batch.failed))
    model.eval()
    logits = model(batch.clips.to(device), batch.boxes.to(device))
    box_keyframes = batch.index[batch.boxes[:, 0].long()]  # [K]: the dataset index of each box's keyframe
    return AvaPredictions(box_keyframes, list(batch.video_ids), torch.tensor(batch.timestamps, dtype=torch.long),
                          batch.original_boxes.float(), torch.sigmoid(logits.float()).cpu(), list(batch.failed))


def predict_ava_detections(model: torch.nn.Module, loader: Iterable[AvaBatch],
                           device: torch.device | str = "cpu") -> AvaPredictions:
    """The predictions of every batch of an AVA test loader (the engine's test stage does the same, and can
    resume: see :mod:`hiera_video.engine.tasks.ava`)."""
    return AvaPredictions.concat([predict_ava_batch(model, batch, device) for batch in loader])


def evaluate_ava_predictions(cfg, predictions: AvaPredictions, output_dir: str) -> AvaEvaluationResult:
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
    # Only the label map's classes are scored, so only they are written (60 of 80 ids: a quarter smaller).
    predictions = predictions.without_repeats()
    write_detections_csv(detections_path, predictions.rows(label_map))
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
    failed = {f"{item['video_id']},{int(item['timestamp']):04d}": item["error"] for item in predictions.failed}
    failed_keys = sorted(failed)
    result.failed_keyframes = [{"keyframe": key, "error": failed[key]} for key in failed_keys]
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
