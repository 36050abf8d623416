"""Draw a training run's curves (loss, learning rate, accuracy) from ``OUTPUT_DIR/stats.jsonl`` to a PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from hiera_video.engine.logging import read_stats


def _import_pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("Plotting needs matplotlib: pip install hiera-video[plot]") from error
    return plt


def _series(records: list[dict], mode: str, key: str) -> tuple[list[float], list[float]]:
    """(x in fractional epochs, y) of ``key`` over the records of ``mode``."""
    xs, ys = [], []
    for record in records:
        if record.get("mode") != mode or key not in record or record[key] is None:
            continue
        if mode == "train_iter":
            # Iteration records carry their position within the epoch; place them between epochs.
            iters = max(r["iter"] for r in records if r.get("mode") == "train_iter" and r["epoch"] == record["epoch"])
            xs.append(record["epoch"] - 1 + record["iter"] / iters)
        else:
            xs.append(record["epoch"])
        ys.append(record[key])
    return xs, ys


def plot_training_log(output_dir: str, out_path: Optional[str] = None) -> Path:
    """Write loss, lr and accuracy curves of the run in ``output_dir`` to ``out_path``
    (default ``OUTPUT_DIR/curves.png``); return the PNG's path."""
    records = read_stats(output_dir)
    plt = _import_pyplot()
    figure, (loss_axis, lr_axis, accuracy_axis) = plt.subplots(1, 3, figsize=(15, 4))
    loss_axis.plot(*_series(records, "train_iter", "loss"), alpha=0.4, label="iteration")
    loss_axis.plot(*_series(records, "train_epoch", "loss"), marker="o", label="epoch mean")
    loss_axis.set(title="training loss", xlabel="epoch")
    lr_axis.plot(*_series(records, "train_iter", "lr"))
    lr_axis.set(title="learning rate", xlabel="epoch")
    accuracy_curves = (("train_epoch", "top1", "train top-1"), ("val", "top1", "val top-1"), ("val", "top5", "val top-5"))
    for mode, key, label in accuracy_curves:
        xs, ys = _series(records, mode, key)
        if xs:
            accuracy_axis.plot(xs, ys, marker="o", label=label)
    accuracy_axis.set(title="accuracy (%)", xlabel="epoch")
    for axis in (loss_axis, accuracy_axis):
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.tight_layout()
    out_path = Path(out_path) if out_path else Path(output_dir) / "curves.png"
    figure.savefig(out_path, dpi=100)
    plt.close(figure)
    return out_path
