"""docs/REPRODUCE.md names only configs that exist, load and build, and commands whose overrides load;
every K400 ablation config has its row. (tests/engine/test_mae_settings.py trains a step of each row.)"""
import re
import shlex
from pathlib import Path

import pytest
import torch

from hiera_video.config import load_config
from hiera_video.engine.tasks import get_task, model_input_size

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
                           ("K700 Hiera-L", "80.3"), ("K700 Hiera-H", "81.1")]:
        assert any(row.startswith(f"| {result} ") and f"| {number} |" in row for row in rows), result
    # Paper Table 6 (SSv2) and the AVA table: the pretraining, the number and the views of each row.
    for result, number, views in [
            ("SSv2 Hiera-L (K400 pretrain)", "74.7", "3x1"), ("SSv2 Hiera-L (K400 pretrain)", "75.0", "3x2"),
            ("SSv2 Hiera-L (SSv2 pretrain)", "74.9", "3x1"), ("SSv2 Hiera-L (SSv2 pretrain)", "75.1", "3x2"),
            ("SSv2 Hiera-L 32 frames (SSv2 pretrain)", "76.5", "3x1"),
            ("AVA v2.2 Hiera-L (K400 pretrain)", "39.8", "1 centre"),
            ("AVA v2.2 Hiera-L (K600 pretrain)", "40.7", "1 centre"),
            ("AVA v2.2 Hiera-L (K700 pretrain)", "41.7", "1 centre"),
            ("AVA v2.2 Hiera-H (K400 pretrain)", "42.5", "1 centre"),
            ("AVA v2.2 Hiera-H (K600 pretrain)", "42.8", "1 centre"),
            ("AVA v2.2 Hiera-H (K700 pretrain)", "43.3", "1 centre")]:
        assert any(row.startswith(f"| {result} | {number} |") and row.endswith(f"| {views} |") for row in rows), (
            result, number, views)
    for result, number in [("IN1K Hiera-T", "82.8"), ("IN1K Hiera-S", "83.8"), ("IN1K Hiera-B", "84.5"),
                           ("IN1K Hiera-B+", "85.2"), ("IN1K Hiera-L", "86.1"), ("IN1K Hiera-H", "86.9")]:
        assert any(row.startswith(f"| {result} ") and f"| {number} |" in row for row in rows), result
    assert "TRAIN.ENABLE False TEST.CHECKPOINT_FILE_PATH official.pth" in GUIDE


RESULT_ROWS = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in GUIDE.splitlines()
               if line.startswith("| ") and line.count(" | ") == 5 and "`" in line]


def command_output_dirs() -> dict:
    """OUTPUT_DIR (without ``./``) of every command of the guide whose config loads (the others fail
    test_every_command_loads_with_its_overrides)."""
    dirs = {}
    for command in COMMANDS:
        try:
            dirs[command] = command_config(command)
        except Exception:
            continue
    return {command: cfg.OUTPUT_DIR.removeprefix("./") for command, cfg in dirs.items()}


def cell_command(cell: str):
    """The command of a table cell written as `python tools/run_net.py ...`, else None."""
    match = re.fullmatch(r"`(python tools/run_net\.py [^`]+)`", cell)
    return match.group(1) if match else None


@pytest.mark.parametrize("row", RESULT_ROWS, ids=lambda row: f"{row[0]} {row[1]}")
def test_every_rows_test_command_uses_its_views_and_finds_its_fine_tuned_checkpoint(row):
    result, _, _, finetune, test, views = row
    cfg = command_config(cell_command(test))
    expected = (1, 1) if views == "1 centre" else tuple(int(n) for n in views.split("x"))
    assert (cfg.TEST.NUM_SPATIAL_CROPS, cfg.TEST.NUM_ENSEMBLE_VIEWS) == expected, (result, views)
    # Testing without TEST.CHECKPOINT_FILE_PATH reads the fine-tuning's OUTPUT_DIR, so both must name the same one
    # (a row that reuses another row's fine-tuning must test in an OUTPUT_DIR that some fine-tuning writes).
    assert not cfg.TEST.CHECKPOINT_FILE_PATH, result
    if cell_command(finetune):
        assert command_config(cell_command(finetune)).OUTPUT_DIR == cfg.OUTPUT_DIR, result
    else:
        assert any(command_config(cell_command(other[3])).OUTPUT_DIR == cfg.OUTPUT_DIR
                   for other in RESULT_ROWS if cell_command(other[3])), result


@pytest.mark.parametrize("command", [c for c in COMMANDS if "TRAIN.CHECKPOINT_FILE_PATH output/" in c], ids=str)
def test_every_checkpoint_a_command_starts_from_is_the_last_one_another_command_writes(command):
    """output/DIR/checkpoints/checkpoint_epoch_N.pyth: DIR is the OUTPUT_DIR of a command of the guide whose
    config trains N epochs, so a typo in a directory or an epoch fails here, not after weeks of pretraining."""
    path = command_config(command).TRAIN.CHECKPOINT_FILE_PATH
    writers = {f"{output_dir}/checkpoints/checkpoint_epoch_{command_config(other).SOLVER.MAX_EPOCH:05d}.pyth"
               for other, output_dir in command_output_dirs().items() if other != command}
    assert path in writers, f"{command}: no command of the guide writes {path}"


@pytest.mark.parametrize("name, task", [("configs/SSv2/hiera_l_32x.yaml", "classification"),
                                        ("configs/SSv2/mae_hiera_l_32x.yaml", "mae")])
def test_the_32_frame_configs_build_hiera_l_for_32_frame_clips(name, task):
    """Paper Table 6's 32-frame Hiera-L: input (32, 224, 224), 16x56x56 tokens, 16 temporal positions; the
    16-frame config's model is the same but for its input."""
    assert name in NAMED_CONFIGS
    cfg = load_config(str(ROOT / name))
    assert cfg.TASK == task and cfg.TRAIN.DATASET == "ssv2" and model_input_size(cfg) == (32, 224, 224)
    model = build_on_meta(cfg)
    assert tuple(model.pos_embed_temporal.shape) == (1, 16, 144)
    assert tuple(model.pos_embed_spatial.shape) == (1, 56 * 56, 144)
    sixteen = build_on_meta(load_config(str(ROOT / name.replace("_32x", ""))))
    assert tuple(sixteen.pos_embed_temporal.shape) == (1, 8, 144)
    assert sum(p.numel() for p in model.parameters()) - model.pos_embed_temporal.numel() - (
        model.decoder_pos_embed.numel() if task == "mae" else 0) == sum(p.numel() for p in sixteen.parameters()) - (
        sixteen.pos_embed_temporal.numel() + (sixteen.decoder_pos_embed.numel() if task == "mae" else 0))


def test_a_32_frame_tiny_hiera_trains_a_step_on_32_frame_clips():
    """The 32-frame fine-tuning config at tiny width (one block per stage, 32x32 crops) keeps its 32 frames
    through a forward and backward pass."""
    cfg = load_config(str(ROOT / "configs/SSv2/hiera_l_32x.yaml"),
                      ["HIERA.EMBED_DIM", "16", "HIERA.NUM_HEADS", "1", "HIERA.STAGES", "[1, 1, 1, 1]",
                       "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32"])
    model = get_task(cfg).build_model()
    logits = model(torch.randn(2, 3, 32, 32, 32))
    assert logits.shape == (2, 174)
    logits.float().logsumexp(-1).mean().backward()
    assert model.pos_embed_temporal.grad.abs().sum() > 0
