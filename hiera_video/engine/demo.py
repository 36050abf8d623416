"""The built-in demo: synthetic motion videos -> MAE pretraining -> fine-tuning -> 3x5-view test, on CPU.

``python tools/run_net.py --demo [KEY VALUE ...]`` writes everything under OUTPUT_DIR (default
``./demo_output``): ``data/`` (generated once), ``mae/`` and ``finetune/`` (checkpoints, stats, test
metrics) and, when matplotlib is installed, pictures: ``mae/reconstruction.png`` (what the pretrained MAE
makes of hidden parts of test clips) and ``{mae,finetune}/curves.png`` (training curves). Overrides apply
to both stages. It needs the ``configs/demo`` files of a source checkout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from fvcore.common.config import CfgNode

from hiera_video.config import load_config
from hiera_video.utils.errors import MissingInputError

from .checkpoint import find_latest_checkpoint
from .launch import JobResult, run
from .logging import read_stats

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "demo"
DEFAULT_OUTPUT_DIR = "./demo_output"


def _demo_config_path(name: str) -> str:
    """The path of ``configs/demo/<name>``; an error saying the demo needs a source checkout."""
    path = CONFIG_DIR / name
    if not path.is_file():
        raise MissingInputError(
            f"The demo needs {path}: run it from a source checkout (git clone ...; pip install -e .)."
        )
    return str(path)


def _output_root(opts: Sequence[str]) -> Path:
    """OUTPUT_DIR given among the overrides, else ./demo_output."""
    pairs = dict(zip(opts[0::2], opts[1::2]))
    return Path(pairs.get("OUTPUT_DIR", DEFAULT_OUTPUT_DIR))


def demo_config(name: str, root: Path, stage_dir: str, opts: Sequence[str] = ()) -> CfgNode:
    """``configs/demo/<name>`` reading the dataset in ``root/data`` and writing to ``root/<stage_dir>``,
    with the user's overrides ``opts`` (their OUTPUT_DIR is ``root``)."""
    data_dir = str(root / "data")
    data_opts = ["DATA.PATH_TO_DATA_DIR", data_dir, "DATA.PATH_PREFIX", data_dir]
    return load_config(_demo_config_path(name), data_opts + list(opts) + ["OUTPUT_DIR", str(root / stage_dir)])


def print_mae_progress(output_dir: str) -> None:
    """Print the MAE run's epoch-mean loss at its first and last epoch (nothing when it trained none)."""
    losses = {record["epoch"]: record["loss"] for record in read_stats(output_dir) if record.get("mode") == "train_epoch"}
    if not losses:
        return
    first, last = min(losses), max(losses)
    print(f"MAE loss: {losses[first]:.3f} at epoch {first}, {losses[last]:.3f} at epoch {last}", flush=True)


def write_demo_pictures(mae_dir: str, finetune_dir: str) -> list[Path]:
    """Draw the MAE reconstructions and both stages' training curves, print their paths and return them;
    without matplotlib, say how to install it and return []."""
    from hiera_video.utils.mae_visualization import write_mae_visualization
    from hiera_video.utils.plot_log import PLOT_INSTALL_HINT, MissingPlotLibraryError, import_pyplot, plot_training_log

    try:
        import_pyplot()
    except MissingPlotLibraryError:
        print(f"No pictures: they need matplotlib ({PLOT_INSTALL_HINT}).", flush=True)
        return []
    pictures = [write_mae_visualization(mae_dir, str(Path(mae_dir) / "reconstruction.png")),
                plot_training_log(mae_dir), plot_training_log(finetune_dir)]
    print("Pictures: " + ", ".join(str(path) for path in pictures), flush=True)
    return pictures


def run_demo(opts: Sequence[str] = ()) -> JobResult:
    """Generate the dataset if absent, pretrain, fine-tune and test the tiny Hiera, draw the pictures;
    return the fine-tuning job's result (with its test evaluation)."""
    from hiera_video.utils.motion_dataset import make_motion_dataset

    root = _output_root(opts)
    data_dir = root / "data"
    if not (data_dir / "train.csv").is_file():
        print(f"Writing the synthetic motion dataset to {data_dir} ...", flush=True)
        make_motion_dataset(data_dir)

    mae_cfg = demo_config("mae_hiera_tiny.yaml", root, "mae", opts)
    print("Stage 1/2: MAE pretraining", flush=True)
    run(mae_cfg)
    print_mae_progress(mae_cfg.OUTPUT_DIR)

    pretrained = find_latest_checkpoint(mae_cfg.OUTPUT_DIR)
    finetune_cfg = demo_config("hiera_tiny.yaml", root, "finetune", list(opts) + ["TRAIN.CHECKPOINT_FILE_PATH", str(pretrained)])
    print("Stage 2/2: fine-tuning from the MAE encoder, then 3x5-view testing", flush=True)
    result = run(finetune_cfg)
    write_demo_pictures(mae_cfg.OUTPUT_DIR, finetune_cfg.OUTPUT_DIR)
    return result
