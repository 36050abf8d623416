"""The built-in demo: synthetic motion videos -> MAE pretraining -> fine-tuning -> 3x5-view test, on CPU.

``python tools/run_net.py --demo [KEY VALUE ...]`` writes everything under OUTPUT_DIR (default
``./demo_output``): ``data/`` (generated once), ``mae/`` and ``finetune/`` (checkpoints, stats, test
metrics). Overrides apply to both stages. It needs the ``configs/demo`` files of a source checkout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hiera_video.config import load_config
from hiera_video.utils.errors import MissingInputError

from .checkpoint import find_latest_checkpoint
from .launch import JobResult, run

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "demo"
DEFAULT_OUTPUT_DIR = "./demo_output"


def _demo_config_path(name: str) -> str:
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


def run_demo(opts: Sequence[str] = ()) -> JobResult:
    """Generate the dataset if absent, pretrain, fine-tune and test the tiny Hiera; return the fine-tuning
    job's result (with its test evaluation)."""
    from hiera_video.utils.motion_dataset import make_motion_dataset

    opts = list(opts)
    root = _output_root(opts)
    data_dir = root / "data"
    if not (data_dir / "train.csv").is_file():
        print(f"Writing the synthetic motion dataset to {data_dir} ...", flush=True)
        make_motion_dataset(data_dir)
    data_opts = ["DATA.PATH_TO_DATA_DIR", str(data_dir), "DATA.PATH_PREFIX", str(data_dir)]

    mae_cfg = load_config(_demo_config_path("mae_hiera_tiny.yaml"), data_opts + opts + ["OUTPUT_DIR", str(root / "mae")])
    print("Stage 1/2: MAE pretraining", flush=True)
    run(mae_cfg)
    pretrained = find_latest_checkpoint(mae_cfg.OUTPUT_DIR)

    finetune_opts = ["OUTPUT_DIR", str(root / "finetune"), "TRAIN.CHECKPOINT_FILE_PATH", str(pretrained)]
    finetune_cfg = load_config(_demo_config_path("hiera_tiny.yaml"), data_opts + opts + finetune_opts)
    print("Stage 2/2: fine-tuning from the MAE encoder, then 3x5-view testing", flush=True)
    return run(finetune_cfg)
