"""Per-class AP bar chart for AVA results (matplotlib is the optional ``plot`` extra)."""
from __future__ import annotations

from iopath.common.file_io import g_pathmgr

from hiera_video.evaluation.ava_eval import AvaEvaluationResult


def _import_pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "the per-class AP chart needs matplotlib: pip install matplotlib (or pip install -e '.[plot]' in a checkout)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_per_class_ap_chart(result: AvaEvaluationResult, path: str) -> None:
    """Save a PNG with one horizontal bar per class (AP in [0, 1], best first) and the mAP as a line."""
    plt = _import_pyplot()
    ranked = sorted(result.per_class_ap.items(), key=lambda item: item[1])
    names = [name for name, _ in ranked]
    values = [ap for _, ap in ranked]
    figure, axes = plt.subplots(figsize=(8, 1.0 + 0.22 * max(len(names), 1)))
    axes.barh(range(len(names)), values, color="tab:blue")
    axes.set_yticks(range(len(names)), names, fontsize=7)
    axes.axvline(result.mean_ap, color="tab:red", linestyle="--", label=f"mAP {result.mean_ap:.4f}")
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("AP@0.5 IoU")
    axes.legend(loc="lower right")
    figure.tight_layout()
    with g_pathmgr.open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
