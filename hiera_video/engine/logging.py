"""What a user sees: a text log, JSON-lines stats, tqdm bars on rank 0 and optional TensorBoard events.

Only rank 0 writes. ``OUTPUT_DIR/stats.jsonl`` gets one JSON object per line: ``{"mode": "train_iter",
...}`` every LOG_PERIOD iterations, ``{"mode": "train_epoch", ...}`` per epoch and ``{"mode": "val", ...}``
/ ``{"mode": "test", ...}`` for evaluations; ``tools/plot_log.py`` draws it.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from tqdm import tqdm

from hiera_video.utils.errors import MissingInputError
from hiera_video.utils.json_io import dumps_strict

LOGGER_NAME = "hiera_video"
STATS_FILE = "stats.jsonl"


def get_logger() -> logging.Logger:
    """The toolkit's logger."""
    return logging.getLogger(LOGGER_NAME)


def setup_logging(output_dir: str, is_main: bool) -> logging.Logger:
    """Log INFO to stderr and ``OUTPUT_DIR/log.txt`` on rank 0; only errors elsewhere."""
    logger = get_logger()
    for handler in list(logger.handlers):  # a second job in the same process must not leak the old file
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.ERROR)
    formatter = logging.Formatter("[%(asctime)s %(levelname)s] %(message)s", datefmt="%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    logger.addHandler(console)
    if is_main:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        log_file = logging.FileHandler(Path(output_dir) / "log.txt", encoding="utf-8")
        log_file.setFormatter(formatter)
        logger.addHandler(log_file)
    return logger


def progress(iterable: Iterable, is_main: bool, **kwargs: Any) -> tqdm:
    """A tqdm bar on rank 0 when stderr is a terminal; silent (but still iterating) otherwise."""
    return tqdm(iterable, disable=not (is_main and sys.stderr.isatty()), dynamic_ncols=True, **kwargs)


def _hint_tensorboard_once(output_dir: str) -> None:
    """Say how to get TensorBoard events, once per OUTPUT_DIR (not again when a job resumes there)."""
    marker = Path(output_dir) / ".tensorboard_hint_shown"
    if marker.exists():
        return
    get_logger().info('TensorBoard events are off: pip install tensorboard (or pip install -e ".[tensorboard]" '
                      "in a checkout) to get them; the JSON-lines stats in %s have the same numbers.",
                      Path(output_dir) / STATS_FILE)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


class StatsWriter:
    """Appends JSON-lines records to ``OUTPUT_DIR/stats.jsonl`` and, when installed, TensorBoard events."""

    def __init__(self, output_dir: str, is_main: bool, tensorboard: bool = True):
        self.enabled = is_main
        self.path = Path(output_dir) / STATS_FILE
        self._tensorboard = self._open_tensorboard(output_dir) if (is_main and tensorboard) else None

    @staticmethod
    def _open_tensorboard(output_dir: str) -> Optional[Any]:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            _hint_tensorboard_once(output_dir)
            return None
        return SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))

    def write(self, record: dict[str, Any], step: Optional[int] = None) -> None:
        """Append one record (plus a wall-clock ``time``); numeric fields also go to TensorBoard."""
        if not self.enabled:
            return
        record = {**record, "time": round(time.time(), 3)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(dumps_strict(record) + "\n")
        if self._tensorboard is not None and step is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("time", "epoch", "iter"):
                    self._tensorboard.add_scalar(f"{record.get('mode', 'stats')}/{key}", value, step)

    def close(self) -> None:
        """Flush TensorBoard events."""
        if self._tensorboard is not None:
            self._tensorboard.close()


def read_stats(output_dir: str) -> list[dict[str, Any]]:
    """All records of ``OUTPUT_DIR/stats.jsonl`` (for plotting and tests)."""
    path = Path(output_dir) / STATS_FILE
    if not path.is_file():
        raise MissingInputError(f"No {STATS_FILE} in {output_dir}: is this the OUTPUT_DIR of a training run?")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
