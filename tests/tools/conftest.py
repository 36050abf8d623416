"""A folder as the demo leaves it, small, for the tools that read the demo's output."""
from pathlib import Path

import pytest
import torch

from hiera_video.engine.checkpoint import save_checkpoint
from hiera_video.engine.demo import demo_config
from hiera_video.engine.tasks import MaskedAutoencoderTask
from hiera_video.utils.motion_dataset import make_motion_dataset


@pytest.fixture(scope="session")
def after_the_demo(tmp_path_factory) -> Path:
    """A working directory as ``python tools/run_net.py --demo`` leaves it, small: ``demo_output/data``
    with one test video per class and ``demo_output/mae/checkpoints/`` with an (untrained) checkpoint of
    the demo's MAE, whose saved config names the data as the demo does (relative to this directory)."""
    root = tmp_path_factory.mktemp("cwd")
    make_motion_dataset(root / "demo_output" / "data", {"test": 1})
    cfg = demo_config("mae_hiera_tiny.yaml", Path("demo_output"), "mae")
    model = MaskedAutoencoderTask(cfg).build_model()
    save_checkpoint(str(root / cfg.OUTPUT_DIR), 0, model, torch.optim.SGD(model.parameters(), lr=0.1), None,
                    cfg.dump())
    return root
