"""Bar chart of the recorded speed-ups: ``benchmarks/results.json`` -> ``benchmarks/speed.png``.

    python benchmarks/plot.py [--results benchmarks/results.json] [--out benchmarks/speed.png]

The benchmark scripts record their rows with ``--save`` (:func:`save_results`); every row that has a
``speedup`` (how many times faster than the reference of its section, measured in the same process)
becomes one bar, grouped and coloured by section. Needs matplotlib: ``pip install hiera-video[plot]``.
"""
import argparse
import json
import platform
from datetime import date
from pathlib import Path
from typing import Optional

RESULTS_FILE = Path(__file__).resolve().parent / "results.json"


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict:
    """Where and with what a result was measured (CPU, core count, library versions, date)."""
    import os

    import torch

    return {"machine": cpu_name(), "cores": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(), "date": date.today().isoformat()}


def save_results(section: str, rows: list[dict], unit: str, note: str = "",
                 path: Path = RESULTS_FILE) -> None:
    """Replace ``section`` of the results file with ``rows`` (dicts with at least ``name``; a ``speedup``
    makes a bar in the plot), the ``unit`` of their rates, a ``note`` and the machine description."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[section] = {"unit": unit, "note": note, "environment": machine_description(), "rows": rows}
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"recorded {len(rows)} rows as {section!r} in {path}")


def load_bars(path: Path) -> list[tuple[str, str, float]]:
    """(section, bar label, speed-up) of every row with a ``speedup``, in file order."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the benchmarks with --save first "
                                "(e.g. python benchmarks/eval_speed.py --save)")
    results = json.loads(path.read_text())
    return [(section, bar_label(section, row), float(row["speedup"]))
            for section, record in results.items() for row in record["rows"] if "speedup" in row]


def bar_label(section: str, row: dict) -> str:
    """``group: name`` of a row (just the name when the group only repeats the section)."""
    group = row.get("group", section)
    return row["name"] if group == section else f"{group}: {row['name']}"


def draw(bars: list[tuple[str, str, float]], out: Path, title: Optional[str] = None) -> None:
    """Horizontal bars of the speed-ups, a dashed line at 1x (the reference), values written at the bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install hiera-video[plot]") from None
    sections = list(dict.fromkeys(section for section, _, _ in bars))
    colours = {section: plt.get_cmap("tab10")(i) for i, section in enumerate(sections)}
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(bars) + 1.5))
    positions = range(len(bars))[::-1]  # first row on top
    axes.barh(list(positions), [value for _, _, value in bars],
              color=[colours[section] for section, _, _ in bars])
    axes.set_yticks(list(positions), [f"{section}: {label}" for section, label, _ in bars], fontsize=8)
    for position, (_, _, value) in zip(positions, bars):
        axes.text(value, position, f" {value:.2f}x", va="center", fontsize=8)
    axes.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("speed-up against the reference measured in the same process (x)")
    axes.set_xlim(0, max(value for _, _, value in bars) * 1.18)
    axes.set_title(title or "hiera-video speed-ups (CPU, 2 cores)")
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


def main() -> None:
    """Read the results file and write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    parser.add_argument("--out", type=Path, default=RESULTS_FILE.with_name("speed.png"))
    args = parser.parse_args()
    bars = load_bars(args.results)
    if not bars:
        raise SystemExit(f"{args.results} has no rows with a 'speedup'; nothing to plot")
    draw(bars, args.out)


if __name__ == "__main__":
    main()
