"""MAE Hiera: official loss/pred/label for the same mask, masking geometry, and reconstructions."""
import pytest
import torch

from hiera_video.models import create_model, list_models

from .oracle import build_official, relative_error, tiny_overrides

MAE_MODELS = [n for n in list_models() if n.startswith("mae_")]


@pytest.mark.parametrize("name", MAE_MODELS)
def test_loss_pred_label_match_official_for_the_same_mask(official, name):
    torch.manual_seed(0)
    overrides = tiny_overrides(name)
    theirs = build_official(official, name, **overrides).eval()
    ours = create_model(name, **overrides).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, *ours.input_size)
    mask = ours.get_random_mask(x, mask_ratio=0.5)
    with torch.no_grad():
        loss, pred, label, kept = ours(x, mask=mask)
        ref_loss, ref_pred, ref_label, ref_kept = theirs(x, mask=mask)
    assert torch.equal(kept, ref_kept)
    assert pred.shape == ref_pred.shape and label.shape == ref_label.shape
    assert relative_error(pred, ref_pred) < 1e-4
    assert relative_error(label, ref_label) < 1e-5
    assert abs(loss.item() - ref_loss.item()) <= 1e-4 * ref_loss.item()


def test_full_size_video_mae_matches_official(official):
    """mae_hiera_base_16x224 at 90% masking: 39 of 392 units kept, 1412 masked tokens of 768 pixels."""
    torch.manual_seed(0)
    theirs = build_official(official, "mae_hiera_base_16x224").eval()
    ours = create_model("mae_hiera_base_16x224").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 16, 224, 224)
    mask = ours.get_random_mask(x, mask_ratio=0.9)
    with torch.no_grad():
        loss, pred, label, kept = ours(x, mask=mask)
        ref_loss, ref_pred, _, _ = theirs(x, mask=mask)
    assert kept.sum().item() == 39
    assert pred.shape == (1412, 768) and label.shape == (1412, 768)
    assert relative_error(pred, ref_pred) < 1e-4
    assert abs(loss.item() - ref_loss.item()) <= 1e-4 * ref_loss.item()


def test_masked_encoder_stages_match_official(official):
    torch.manual_seed(0)
    overrides = tiny_overrides("mae_hiera_base_16x224")
    theirs = build_official(official, "mae_hiera_base_16x224", **overrides).eval()
    ours = create_model("mae_hiera_base_16x224", **overrides).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, *ours.input_size)
    mask = ours.get_random_mask(x, mask_ratio=0.5)
    with torch.no_grad():
        _, stages = ours.forward_tokens(x, mask, return_intermediates=True)
        _, ref_stages = official.Hiera.forward(theirs, x, mask, return_intermediates=True)
    for feature, ref in zip(stages, ref_stages):
        assert feature.shape == ref.shape
        assert relative_error(feature, ref) < 1e-4


def test_masked_pixels_do_not_reach_the_encoder():
    """Changing pixels of hidden mask units leaves the encoder output unchanged (no leak via the conv)."""
    torch.manual_seed(0)
    model = create_model("mae_hiera_base_16x224", **tiny_overrides("mae_hiera_base_16x224")).eval()
    x = torch.randn(1, 3, *model.input_size)
    mask = model.get_random_mask(x, mask_ratio=0.75)
    pixel_mask = torch.nn.functional.interpolate(
        mask.view(1, 1, *model.mask_spatial_shape).float(), size=x.shape[2:]).bool()
    noisy = torch.where(pixel_mask, x, torch.randn_like(x))
    with torch.no_grad():
        latent, _ = model.forward_encoder(x, 0.75, mask)
        noisy_latent, _ = model.forward_encoder(noisy, 0.75, mask)
    torch.testing.assert_close(latent, noisy_latent)


def test_reconstruction_keeps_visible_patches_and_shapes():
    torch.manual_seed(0)
    model = create_model("mae_hiera_base_16x224", **tiny_overrides("mae_hiera_base_16x224")).eval()
    x = torch.randn(2, 3, *model.input_size)
    out = model.reconstruct(x, mask_ratio=0.75)
    frames = model.input_size[0] // model.patch_stride[0]
    assert out["target"].shape == (2, 3, frames, *model.input_size[1:])
    assert out["reconstruction"].shape == out["target"].shape
    assert out["pixel_mask"].shape == (2, 1, frames, *model.input_size[1:])
    torch.testing.assert_close(out["target"], x[:, :, ::2])
    visible = out["pixel_mask"].expand_as(out["target"]) == 0
    assert visible.any() and (~visible).any()
    torch.testing.assert_close(out["pasted"][visible], out["target"][visible])
    torch.testing.assert_close(out["pasted"][~visible], out["reconstruction"][~visible])
    # hidden fraction of pixels equals the hidden fraction of units
    assert out["pixel_mask"].mean().item() == pytest.approx(1 - out["mask"].float().mean().item())


def test_image_mae_trains():
    torch.manual_seed(0)
    model = create_model("mae_hiera_tiny_224", **tiny_overrides("mae_hiera_tiny_224"))
    loss, *_ = model(torch.randn(2, 3, 64, 64), mask_ratio=0.6)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0
