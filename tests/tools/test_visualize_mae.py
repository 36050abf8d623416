"""tools/visualize_mae.py: a labelled figure of what an MAE checkpoint makes of hidden parts of test clips."""
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hiera_video.models import create_model
from hiera_video.utils.mae_visualization import (
    ROW_LABELS, MaeReconstruction, reconstruct_clips, reconstruction_figure,
)

pytest.importorskip("matplotlib", reason="the figure needs the [plot] extra (matplotlib)")
from PIL import Image  # noqa: E402  (matplotlib brings Pillow)

TOOL = Path(__file__).resolve().parents[2] / "tools" / "visualize_mae.py"
MEAN, STD = [0.45] * 3, [0.225] * 3


def test_the_masked_row_greys_out_the_hidden_mask_units_and_the_loss_is_the_models():
    mae = create_model("mae_hiera_base_16x224", input_size=(8, 64, 64), embed_dim=16, num_heads=1,
                       stages=(1, 1, 1, 1), decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=1).eval()
    clips = torch.randn(2, 3, 8, 64, 64)
    result = reconstruct_clips(mae, clips, mask_ratio=0.75, mean=MEAN, std=STD, seed=3)
    # [clips, rows, frames the model predicts (every second: temporal patch stride 2), H, W, C]
    assert result.rows.shape == (2, len(ROW_LABELS), 4, 64, 64, 3)
    hidden = (result.rows[:, 1] == 0.5).all(dim=-1)
    assert hidden.float().mean().item() == 0.75 and (result.hidden_units, result.num_units) == (12, 16)
    pasted, inputs = result.rows[:, 3], result.rows[:, 0]
    assert torch.equal(pasted[~hidden], inputs[~hidden])  # the visible parts are the input itself
    torch.manual_seed(3)  # the same seed draws the same mask
    assert result.loss == pytest.approx(mae(clips, mask_ratio=0.75)[0].item())


def test_the_figure_labels_its_rows_and_clips_and_states_mask_ratio_and_loss():
    result = MaeReconstruction(torch.rand(2, len(ROW_LABELS), 4, 16, 16, 3), 0.75, 12, 16, 0.4321)
    figure = reconstruction_figure(result, ["up_fast", "left_slow"], heading="MAE: ")
    axes = figure.axes  # rows of 2 clips x 4 frames
    assert [axes[row * 8].get_ylabel() for row in range(len(ROW_LABELS))] == list(ROW_LABELS)
    assert [axes[0].get_title(), axes[1].get_title(), axes[4].get_title()] == [
        "up_fast\nframe 1", "frame 2", "left_slow\nframe 1"]
    assert figure.get_suptitle() == "MAE: mask ratio 0.75 (12 of 16 mask units hidden), loss 0.432 on these clips"


def docstring_example() -> list[str]:
    """The command line printed in the tool's docstring, run with this interpreter."""
    line = next(line.strip() for line in TOOL.read_text().splitlines() if line.strip().startswith("python tools/"))
    return [sys.executable, str(TOOL), *shlex.split(line)[2:]]


def test_the_docstring_example_draws_the_labelled_figure_after_the_demo(after_the_demo):
    result = subprocess.run(docstring_example(), cwd=after_the_demo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    png = after_the_demo / result.stdout.strip()
    assert png == after_the_demo / "demo_output" / "mae" / "reconstruction.png"
    text = Image.open(png).text
    assert text["Title"].startswith("MAE reconstruction, checkpoint_epoch_00001.pyth: mask ratio 0.75 (12 of 16 "
                                    "mask units hidden), loss ")
    rows = "; ".join(label.replace("\n", " ") for label in ROW_LABELS)
    assert text["Description"] == f"rows: {rows}; columns: right_slow, up_fast"
    assert Image.open(png).size[0] > Image.open(png).size[1]  # two clips side by side


def test_a_checkpoint_without_a_config_asks_for_one(after_the_demo, tmp_path):
    checkpoint = next((after_the_demo / "demo_output" / "mae" / "checkpoints").glob("*.pyth"))
    weights_only = tmp_path / "weights.pth"
    torch.save(torch.load(checkpoint, weights_only=True)["model_state"], weights_only)
    result = subprocess.run([sys.executable, str(TOOL), "--checkpoint", str(weights_only)], cwd=after_the_demo,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {weights_only} carries no config (an official checkpoint?): give the MAE config it was trained "
        "with (--cfg FILE)."]
