"""Parameters and GMACs of every named model match the paper's table (shared/docs/FACTS.md) within 1%."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hiera_video.models import create_model
from hiera_video.models.complexity import count_macs, model_complexity

# (params in millions, GMACs with attention) measured on the official implementation.
PAPER = {
    "hiera_base_16x224": (51.09, 101.7), "hiera_base_plus_16x224": (69.39, 132.3),
    "hiera_large_16x224": (213.09, 412.1), "hiera_huge_16x224": (671.63, 1157.8),
    "hiera_tiny_224": (27.91, 4.9), "hiera_small_224": (35.01, 6.4), "hiera_base_224": (51.52, 9.4),
    "hiera_base_plus_224": (69.90, 12.6), "hiera_large_224": (213.74, 40.3), "hiera_huge_224": (672.78, 124.7),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_size_and_cost_match_the_paper(name):
    params, gmacs = PAPER[name]
    info = model_complexity(name)
    assert info["params_m"] == pytest.approx(params, rel=0.01)
    assert info["gmacs"] == pytest.approx(gmacs, rel=0.01)


def test_mae_base_video_has_the_decoder_parameters():
    assert model_complexity("mae_hiera_base_16x224")["params_m"] == pytest.approx(79.37, rel=0.001)


def test_model_info_prints_a_row_per_model():
    tool = Path(__file__).resolve().parents[2] / "tools" / "model_info.py"
    out = subprocess.run([sys.executable, str(tool), "hiera_base_16x224", "hiera_tiny_224"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert rows == [["hiera_base_16x224", "16x224x224", "51.09", "101.7"],
                    ["hiera_tiny_224", "224x224", "27.91", "4.9"]]


@pytest.mark.parametrize("name", ["hiera_base_16x224", "hiera_small_224"])
def test_counting_repeated_blocks_once_gives_the_full_count(name):
    with torch.device("meta"):
        model = create_model(name).eval()
        inputs = torch.empty(1, 3, *model.input_size)
        assert count_macs(model, inputs) == count_macs(model, inputs, reuse_repeated_blocks=False)


def test_blocks_run_normally_after_a_count():
    model = create_model("hiera_base_16x224", input_size=(8, 64, 64), embed_dim=16, stages=(1, 2, 1, 1),
                         num_classes=5).eval()
    clips = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        before = model(clips)
        count_macs(model, clips)
        assert all("forward" not in vars(block) for block in model.blocks)
        assert torch.equal(model(clips), before)
