"""docs/REPRODUCE.md names only configs that exist, load and build, and commands whose overrides load;
every K400 ablation config has its row. (tests/engine/test_mae_settings.py trains a step of each row.)"""
import re
import shlex
from pathlib import Path

import pytest
import torch

from hiera_video.config import load_config
from hiera_video.engine.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "REPRODUCE.md").read_text()
NAMED_CONFIGS = sorted(set(re.findall(r"configs/[\w/.-]+\.yaml", GUIDE)))
COMMANDS = sorted(set(re.findall(r"python tools/run_net\.py [^`\n]+", GUIDE)))


def command_config(command: str):
    """The config a ``python tools/run_net.py --cfg FILE KEY VALUE ...`` command runs."""
    words = shlex.split(command)[2:]
    assert words[0] == "--cfg", command
    return load_config(str(ROOT / words[1]), words[2:])


def build_on_meta(cfg) -> torch.nn.Module:
    """The config's model, with no memory behind its parameters."""
    with torch.device("meta"):
        return get_task(cfg).build_model()


@pytest.mark.parametrize("name", NAMED_CONFIGS)
def test_every_named_config_exists_loads_and_builds_its_model(name):
    assert (ROOT / name).is_file(), f"docs/REPRODUCE.md names {name}, which does not exist"
    model = build_on_meta(load_config(str(ROOT / name)))
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_loads_with_its_overrides(command):
    cfg = command_config(command)
    if "TRAIN.ENABLE False" in command:
        assert not cfg.TRAIN.ENABLE and cfg.TEST.ENABLE
    if "hiera_base_plus_16x224" in command:
        assert build_on_meta(cfg).blocks[0].dim == 112  # Hiera-B+ widths 112-224-448-896


def test_every_ablation_config_and_every_video_and_image_result_has_a_row():
    ablations = {f"configs/K400/ablations/{p.name}" for p in (ROOT / "configs/K400/ablations").glob("*.yaml")}
    assert ablations and ablations <= set(NAMED_CONFIGS)
    rows = [line for line in GUIDE.splitlines() if line.startswith("| ")]
    for result, number in [("K400 Hiera-B", "84.0"), ("K400 Hiera-B+", "85.0"), ("K400 Hiera-L", "87.3"),
                           ("K400 Hiera-H", "87.8"), ("K600 Hiera-L", "88.3"), ("K600 Hiera-H", "88.8"),
                           ("K700 Hiera-L", "80.3"), ("K700 Hiera-H", "81.1"), ("SSv2 Hiera-L", "74.7"),
                           ("AVA v2.2 Hiera-L", "39.8"), ("AVA v2.2 Hiera-H", "42.5")]:
        assert any(row.startswith(f"| {result} ") and f"| {number} |" in row for row in rows), result
    for result, number in [("IN1K Hiera-T", "82.8"), ("IN1K Hiera-S", "83.8"), ("IN1K Hiera-B", "84.5"),
                           ("IN1K Hiera-B+", "85.2"), ("IN1K Hiera-L", "86.1"), ("IN1K Hiera-H", "86.9")]:
        assert any(row.startswith(f"| {result} ") and f"| {number} |" in row for row in rows), result
    assert "TRAIN.ENABLE False TEST.CHECKPOINT_FILE_PATH official.pth" in GUIDE
