"""What ``tools/predict.py`` prints and writes: a readable top-k table per video and a JSON file (standard
JSON: no NaN or Infinity)."""
from __future__ import annotations

import json
import os
from typing import Sequence


def format_result(record: dict) -> str:
    """One video's block: a header, its top-k table and, with windows, one line per window."""
    if record["error"] is not None:
        return f"{record['path']}  FAILED: {record['error']}"
    lines = [f"{record['path']}  ({record['duration']:.2f} s, {record['views']} views)"]
    lines += [f"  {rank:>3}  {100 * entry['score']:6.2f}%  {entry['label']}"
              for rank, entry in enumerate(record["top_k"], start=1)]
    if record["windows"]:
        lines.append(f"  per {record['window']:g} s window ({record['window_views']} views):")
        for window in record["windows"]:
            labels = "  |  ".join(f"{100 * entry['score']:.1f}% {entry['label']}" for entry in window["top_k"])
            lines.append(f"    {window['start']:8.2f} - {window['end']:8.2f} s  {labels}")
    return "\n".join(lines)


def format_summary(records: Sequence[dict]) -> str:
    """``N videos: M predicted, F failed`` and the failed paths with their reasons."""
    failed = [record for record in records if record["error"] is not None]
    lines = [f"{len(records)} videos: {len(records) - len(failed)} predicted, {len(failed)} failed"]
    lines += [f"  failed: {record['path']}: {record['error']}" for record in failed]
    return "\n".join(lines)


def format_results(records: Sequence[dict]) -> str:
    """Every video's block, then the summary (when there is more than one video or a failure)."""
    blocks = [format_result(record) for record in records]
    if len(records) > 1 or any(record["error"] is not None for record in records):
        blocks.append(format_summary(records))
    return "\n\n".join(blocks)


def printable(text: str, encoding: str = "utf-8") -> str:
    """``text`` as ``encoding`` can show it: the undecodable bytes of a file name (Python's surrogate
    escapes) as ``\\xNN``, other characters the encoding lacks as ``\\uNNNN``."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        raw = text.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return text.encode(encoding, "backslashreplace").decode(encoding)


def write_json(records: Sequence[dict], path: str | os.PathLike) -> None:
    """Write the list of records (one per video, input order) as indented JSON; a NaN or infinite number
    is a ValueError (records are finite: see :mod:`hiera_video.inference.predictor`)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(list(records), handle, indent=2, allow_nan=False)
        handle.write("\n")
