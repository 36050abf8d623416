"""Probe every video of a dataset: a manifest of what each file holds and the list of bad files.

``probe_dataset(dataset, workers=8)`` opens each listed video through the dataset's own reader (same
backend, same decode watchdog ``DATA.DECODE_TIMEOUT``), decodes its first and last frame, and returns
``(manifest, bad)``: manifest rows ``{path, label, num_frames, fps, duration, codec, width, height,
constant_frame_rate}`` for good videos, ``{path, label, source, error}`` for bad ones (``source`` is the
list file and line). Threads run the probes in parallel; each thread has its own watchdog process, so a
hanging file costs one thread ``DATA.DECODE_TIMEOUT`` seconds and nothing else.
"""
from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from hiera_video.datasets.decoding import VideoDecodeError

MANIFEST_COLUMNS = ["path", "label", "num_frames", "fps", "duration", "codec", "width", "height",
                    "constant_frame_rate"]
BAD_COLUMNS = ["path", "label", "source", "error"]


def probe_entry(dataset, index: int) -> dict:
    """Open video ``index`` of ``dataset`` and decode its first and last frames; a manifest or bad row."""
    entry = dataset.entries[index]
    try:
        with dataset.open(entry) as video:
            video.get_frames([0, video.num_frames - 1])
            metadata = video.metadata()
    except VideoDecodeError as error:
        return {"path": entry.path, "label": entry.label, "source": entry.source, "error": error.reason}
    # Frame times summed in floating point: 10.000000000000002 s is 10 s.
    metadata.update(fps=round(metadata["fps"], 6), duration=round(metadata["duration"], 6))
    return dict(metadata, path=entry.path, label=entry.label)


def probe_dataset(dataset, workers: int = 8, show_progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Probe every video of ``dataset`` with ``workers`` threads; return ``(manifest, bad)`` in list order."""
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        results = pool.map(lambda index: probe_entry(dataset, index), range(len(dataset)))
        rows = list(tqdm(results, total=len(dataset), desc="probing videos", disable=not show_progress))
    manifest = [row for row in rows if "error" not in row]
    bad = [row for row in rows if "error" in row]
    return manifest, bad


def write_rows(path: str, rows: list[dict], columns: list[str]) -> str:
    """Write ``rows`` as CSV with ``columns`` (created folders included); return ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def check_dataset(cfg, split: str, output_dir: str, workers: int = 8,
                  show_progress: bool = True) -> dict:
    """Probe the ``split`` list; write ``manifest_{split}.csv`` and ``bad_videos_{split}.csv`` to
    ``output_dir``; return a summary ``{split, listed, good, bad, manifest, bad_list}``."""
    from hiera_video.datasets.registry import build_dataset

    dataset = build_dataset(cfg, split, mode="test")
    manifest, bad = probe_dataset(dataset, workers, show_progress)
    return {
        "split": split,
        "listed": len(dataset),
        "good": len(manifest),
        "bad": len(bad),
        "manifest": write_rows(os.path.join(output_dir, f"manifest_{split}.csv"), manifest, MANIFEST_COLUMNS),
        "bad_list": write_rows(os.path.join(output_dir, f"bad_videos_{split}.csv"), bad, BAD_COLUMNS),
    }
