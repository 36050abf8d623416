"""MAE reconstruction grids: input, masked input and reconstruction rows per clip."""
import torch

from hiera_video.models import create_model
from hiera_video.utils.mae_visualization import mae_reconstruction_grid


def test_grid_has_three_rows_per_clip_and_greys_out_hidden_patches():
    mae = create_model("mae_hiera_base_16x224", input_size=(8, 64, 64), embed_dim=16, num_heads=1,
                       stages=(1, 1, 1, 1), decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=1)
    clips = torch.randn(2, 3, 8, 64, 64)
    grid = mae_reconstruction_grid(mae, clips, mask_ratio=0.75, mean=[0.45] * 3, std=[0.225] * 3)
    frames = 4  # the model predicts every second frame (temporal patch stride 2)
    cell = 64 + 2  # pixels plus padding
    assert grid.shape == (3, 2 + 6 * cell, 2 + frames * cell)
    top = 2 + cell  # clip 0's second row: the masked input
    masked_frames = torch.stack([grid[:, top:top + 64, 2 + j * cell:2 + j * cell + 64] for j in range(frames)])
    grey_fraction = (masked_frames == 0.5).all(dim=1).float().mean().item()
    assert grey_fraction == 0.75  # 12 of the 4x2x2 = 16 mask units are hidden, each the same area
    assert grid.min() >= 0 and grid.max() <= 1
