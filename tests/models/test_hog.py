"""HOG targets: the batched HOGTarget matches a pixel-by-pixel reference; MAE with HOG targets trains."""
import math

import torch

from hiera_video.models import create_model
from hiera_video.models.hog import HOGTarget, hog_per_patch

from .oracle import tiny_overrides

SMOOTH = (1, 2, 1)  # Sobel: this smoothing across, a central difference along


def reference_hog(frame, num_bins=9, cell=8, window=16):
    """Loop HOG of one channel [H, W] (float64): Sobel with reflect padding, Gaussian-weighted magnitude,
    hard unsigned orientation bins, per-cell sums, L2 per cell -> [bins, H/cell, W/cell]."""
    h, w = frame.shape
    std = window / 2
    weight = [math.exp(-0.5 * ((i - (window - 1) / 2) / std) ** 2) for i in range(window)]
    total = sum(weight) ** 2
    out = torch.zeros(num_bins, h // cell, w // cell, dtype=torch.float64)
    pixels = frame.tolist()

    def at(i, j):  # reflect padding by one pixel
        i = -i if i < 0 else (2 * (h - 1) - i if i >= h else i)
        j = -j if j < 0 else (2 * (w - 1) - j if j >= w else j)
        return pixels[i][j]

    for i in range(h):
        for j in range(w):
            # smoothed column on the left minus on the right; smoothed row above minus below
            gx = (sum(SMOOTH[a] * at(i + a - 1, j - 1) for a in range(3))
                  - sum(SMOOTH[a] * at(i + a - 1, j + 1) for a in range(3)))
            gy = (sum(SMOOTH[b] * at(i - 1, j + b - 1) for b in range(3))
                  - sum(SMOOTH[b] * at(i + 1, j + b - 1) for b in range(3)))
            magnitude = math.hypot(gx, gy) * weight[i % window] * weight[j % window] / total
            bin_index = math.floor(math.atan2(gy, gx) / math.pi * num_bins) % num_bins
            out[bin_index, i // cell, j // cell] += magnitude
    norms = out.pow(2).sum(0, keepdim=True).sqrt().clamp_min(1e-12)
    return out / norms


def test_hog_matches_the_loop_reference():
    torch.manual_seed(0)
    frames = torch.rand(2, 3, 16, 32, dtype=torch.float64)
    ours = HOGTarget()(frames)
    assert ours.shape == (2, 3, 9, 2, 4)
    reference = torch.stack([torch.stack([reference_hog(frames[n, c]) for c in range(3)]) for n in range(2)])
    assert (ours - reference).abs().max().item() < 1e-9


def test_every_cell_histogram_has_unit_norm_and_float32_inputs_agree():
    frames = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    hog = HOGTarget()
    in64 = hog(frames)
    assert torch.allclose(in64.norm(dim=2), torch.ones(1, 3, 4, 4, dtype=torch.float64))
    assert hog(frames.float()).dtype == torch.float32
    assert (hog(frames.float()).double() - in64).abs().max().item() < 1e-5


def test_a_vertical_edge_lands_in_one_bin():
    frames = torch.zeros(1, 1, 16, 16)
    frames[..., 8:] = 1.0  # horizontal gradient: orientation 0 or pi, both bin 0
    hog = HOGTarget()(frames)
    assert torch.allclose(hog[0, 0, 0], torch.ones(2, 2))
    assert hog[0, 0, 1:].abs().max() == 0


def test_patch_targets_concatenate_the_cells_of_each_patch():
    frames = torch.rand(2, 3, 4, 32, 48)
    hog = HOGTarget()
    targets = hog_per_patch(hog, frames, 16)
    assert targets.shape == (2, 4 * 2 * 3, 2 * 2 * 3 * 9)
    cells = hog(frames[:, :, 1])  # frame 1, patch row 1, column 2 = token 1*6 + 1*3 + 2
    patch = cells[1, :, :, 2:4, 4:6].permute(2, 3, 0, 1).flatten()  # (ky, kx, c, bin)
    assert torch.equal(targets[1, 6 + 3 + 2], patch)


def tiny_hog_mae():
    """A tiny video MAE predicting HOG."""
    return create_model("mae_hiera_base_16x224", target="hog", **tiny_overrides("mae_hiera_base_16x224"))


def test_hog_mae_predicts_the_hog_of_masked_units_only():
    torch.manual_seed(0)
    model = tiny_hog_mae().eval()
    x = torch.randn(2, 3, *model.input_size)
    mask = model.get_random_mask(x, mask_ratio=0.5)
    with torch.no_grad():
        loss, pred, label, kept = model(x, mask=mask)
    targets = model.targets(x)
    assert model.decoder_pred.out_features == 108 == targets.shape[-1]  # 2x2 cells x 3 channels x 9 bins
    hidden_tokens = targets.shape[1] * (~kept).sum().item() // kept.shape[1]
    assert pred.shape == label.shape == (hidden_tokens, 108)
    with torch.no_grad():
        latent, _ = model.forward_encoder(x, 0.5, mask)
        _, kept_tokens = model.forward_decoder(latent, mask)
    assert torch.equal(label, targets[~kept_tokens])
    assert torch.allclose(loss, ((pred - label) ** 2).mean())


def test_hog_targets_keep_the_pixel_models_state_dict_keys():
    pixel = create_model("mae_hiera_base_16x224", **tiny_overrides("mae_hiera_base_16x224"))
    assert tiny_hog_mae().state_dict().keys() == pixel.state_dict().keys()


def test_hog_mae_lowers_its_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = tiny_hog_mae()
    x = torch.randn(2, 3, *model.input_size)
    mask = model.get_random_mask(x, mask_ratio=0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss, _, _, _ = model(x, mask=mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
