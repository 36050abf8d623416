"""AVA test predictions in memory: per-box arrays (AvaPredictions) against one row tuple per box and id.

    python benchmarks/ava_predictions_memory.py [--boxes 20000]

Builds the predictions of ``--boxes`` proposals (random boxes and scores; AVA v2.2 val has about 150k
proposals above the 0.8 detector threshold) both ways in this one process and prints the Python heap each
takes (tracemalloc peak while building it, plus the tensors' storage, which tracemalloc does not see), the ratio, and the same figure scaled to 150k boxes.
"""
import argparse
import sys
import tracemalloc
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.evaluation.ava_eval import detection_rows_from_scores  # noqa: E402
from hiera_video.evaluation.ava_testing import AvaPredictions  # noqa: E402

AVA_VAL_BOXES = 150_000


def heap_peak(build) -> tuple[int, object]:
    """Peak traced Python heap (bytes) while ``build()`` runs, and what it returned (kept alive)."""
    tracemalloc.start()
    result = build()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, result


def main() -> None:
    """Measure both representations and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=20_000)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    keyframes = torch.arange(args.boxes) // 3  # ~3 people per keyframe
    video_ids = [f"video{int(k) // 900:03d}" for k in keyframes]
    timestamps = 902 + keyframes % 900
    boxes = torch.rand(args.boxes, 4, generator=generator)
    scores = torch.rand(args.boxes, 80, generator=generator)

    python_part, predictions = heap_peak(lambda: AvaPredictions(keyframes.clone(), list(video_ids),
                                                                timestamps.clone(), boxes.clone(), scores.clone(), []))
    # tracemalloc sees Python objects only: add the tensors' storage.
    arrays = python_part + sum(t.nbytes for t in (predictions.keyframes, predictions.timestamps, predictions.boxes,
                                                  predictions.scores))
    rows, _ = heap_peak(lambda: detection_rows_from_scores(video_ids, timestamps.tolist(), boxes.numpy(),
                                                           scores.numpy()))
    scale = AVA_VAL_BOXES / args.boxes
    print(f"{args.boxes} boxes x 80 ids (torch {torch.__version__})")
    print(f"  per-box arrays (AvaPredictions): {arrays / 2**20:8.1f} MiB  -> {arrays * scale / 2**30:6.2f} GiB at 150k")
    print(f"  row tuples (before):             {rows / 2**20:8.1f} MiB  -> {rows * scale / 2**30:6.2f} GiB at 150k")
    print(f"  ratio rows / arrays: {rows / arrays:.1f}x")


if __name__ == "__main__":
    main()
