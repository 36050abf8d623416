"""Draw a training run's curves (loss, learning rate, accuracy) from ``OUTPUT_DIR/stats.jsonl`` to a PNG.

Only panels with data are drawn (an MAE run has no accuracy panel); validation records (``"mode": "val"``)
add their curves to the accuracy panel. Needs matplotlib (``pip install -e ".[plot]"`` in a
checkout, or ``pip install matplotlib``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from hiera_video.engine.logging import read_stats
from hiera_video.utils.errors import EnvironmentMismatchError, UserError

PLOT_INSTALL_HINT = 'pip install -e ".[plot]" in a checkout, or pip install matplotlib'

# Panel title -> its curves: (record mode, key, legend label, line style); "_"-labels stay out of the legend.
# Validation records carry the task's metrics (classification: top1, top5; AVA: mAP), no loss.
PANELS = {
    "loss": (("train_iter", "loss", "train (iteration)", "-"), ("train_epoch", "loss", "train (epoch mean)", "o-")),
    "learning rate": (("train_iter", "lr", "_lr", "-"),),
    "accuracy (%)": (("train_epoch", "top1", "train top-1", "o-"), ("val", "top1", "val top-1", "s-"),
                     ("val", "top5", "val top-5", "s--"), ("val", "mAP", "val frame-mAP", "s-")),
}


class MissingPlotLibraryError(EnvironmentMismatchError, ImportError):
    """matplotlib, which drawing needs, is not installed."""


def import_pyplot():
    """matplotlib.pyplot with the file-only Agg backend; MissingPlotLibraryError naming the install command."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise MissingPlotLibraryError(f"Plotting needs matplotlib: {PLOT_INSTALL_HINT}.") from error
    return plt


def _series(records: list[dict], mode: str, key: str) -> tuple[list[float], list[float]]:
    """(x in fractional epochs, y) of ``key`` over the records of ``mode``."""
    iters_per_epoch: dict[int, int] = {}
    for record in records:
        if record.get("mode") == "train_iter":
            iters_per_epoch[record["epoch"]] = max(iters_per_epoch.get(record["epoch"], 0), record["iter"])
    xs, ys = [], []
    for record in records:
        if record.get("mode") != mode or record.get(key) is None:
            continue
        if mode == "train_iter":
            # Iteration records carry their position within the epoch; place them between epochs.
            xs.append(record["epoch"] - 1 + record["iter"] / iters_per_epoch[record["epoch"]])
        else:
            xs.append(record["epoch"])
        ys.append(record[key])
    return xs, ys


def panels_with_data(records: list[dict]) -> dict[str, list[tuple[str, list[float], list[float], str]]]:
    """PANELS' titles that have data -> their non-empty curves as (label, xs, ys, line style)."""
    panels = {}
    for title, curves in PANELS.items():
        drawn = [(label, *_series(records, mode, key), style) for mode, key, label, style in curves]
        drawn = [curve for curve in drawn if curve[1]]
        if drawn:
            panels[title] = drawn
    return panels


def plot_training_log(output_dir: str, out_path: Optional[str] = None) -> Path:
    """Write the curves of the run in ``output_dir`` that have data to ``out_path`` (default
    ``OUTPUT_DIR/curves.png``), one panel each for loss, learning rate and accuracy; return the PNG's path."""
    records = read_stats(output_dir)
    panels = panels_with_data(records)
    if not panels:
        raise UserError(f"{Path(output_dir) / 'stats.jsonl'} has no loss, lr or accuracy records to plot yet.")
    plt = import_pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (title, curves) in zip(axes[0], panels.items()):
        for label, xs, ys, style in curves:
            axis.plot(xs, ys, style, label=label, alpha=0.4 if label == "train (iteration)" else 1.0)
        axis.set(title=title, xlabel="epoch")
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.suptitle(str(output_dir))
    figure.tight_layout()
    out_path = Path(out_path) if out_path else Path(output_dir) / "curves.png"
    figure.savefig(out_path, dpi=100, metadata={"Title": f"training curves of {output_dir}",
                                                "Description": "panels: " + "; ".join(panels)})
    plt.close(figure)
    return out_path
