"""The timm-like feature API: forward_head, forward_intermediates, reset_classifier, pretrained_cfg."""
import pytest
import torch

from hiera_video.models import create_model

TINY = dict(input_size=(4, 32, 32), embed_dim=16, num_heads=1, stages=(1, 1, 1, 1), num_classes=5)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("hiera_base_16x224", **TINY).eval()


@pytest.fixture(scope="module")
def clips(model):
    return torch.randn(2, 3, *model.input_size, generator=torch.Generator().manual_seed(1))


def test_forward_head_on_last_stage_tokens_gives_the_logits_and_the_features(model, clips):
    with torch.no_grad():
        tokens, _ = model.forward_intermediates(clips)
        assert tokens.shape == (2, 2 * 1 * 1, model.num_features)  # T'=2, H'=W'=1 after 3 poolings
        torch.testing.assert_close(model.forward_head(tokens), model(clips), rtol=0, atol=0)
        torch.testing.assert_close(model.forward_head(tokens, pre_logits=True), model.forward_features(clips),
                                   rtol=0, atol=0)


def test_forward_head_takes_the_last_map_too(model, clips):
    with torch.no_grad():
        last_map = model.forward_intermediates(clips, indices=1, output_fmt="NTHWC", intermediates_only=True)[0]
        torch.testing.assert_close(model.forward_head(last_map), model(clips))


def test_intermediates_are_the_stage_maps_channels_first_or_last(model, clips):
    with torch.no_grad():
        _, channels_last = model(clips, return_intermediates=True)
        _, first = model.forward_intermediates(clips, output_fmt="NCTHW")
        last = model.forward_intermediates(clips, output_fmt="NTHWC", intermediates_only=True)
    assert [tuple(m.shape) for m in first] == [(2, 16, 2, 8, 8), (2, 32, 2, 4, 4), (2, 64, 2, 2, 2),
                                               (2, 128, 2, 1, 1)]
    for ours_first, ours_last, reference in zip(first, last, channels_last):
        torch.testing.assert_close(ours_last, reference, rtol=0, atol=0)
        torch.testing.assert_close(ours_first, reference.permute(0, 4, 1, 2, 3), rtol=0, atol=0)


def test_indices_choose_stages(model, clips):
    with torch.no_grad():
        every = model.forward_intermediates(clips, intermediates_only=True)
        chosen = model.forward_intermediates(clips, indices=[0, -1], intermediates_only=True)
        last_two = model.forward_intermediates(clips, indices=2, intermediates_only=True)
    assert [m.shape for m in chosen] == [every[0].shape, every[3].shape]
    assert [m.shape for m in last_two] == [every[2].shape, every[3].shape]


@pytest.mark.parametrize("kwargs, message", [
    (dict(output_fmt="NCHW"), "NCTHW .channels first. or NTHWC"),
    (dict(indices=[4]), r"stage numbers in \[-4, 3\]"),
    (dict(indices=5), "last 5 of 4 stages"),
])
def test_bad_intermediate_requests_say_what_fits(model, clips, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.forward_intermediates(clips, **kwargs)


def test_image_models_use_image_formats():
    image_model = create_model("hiera_tiny_224", input_size=(64, 64), embed_dim=16, stages=(1, 1, 1, 1)).eval()
    with torch.no_grad():
        maps = image_model.forward_intermediates(torch.randn(1, 3, 64, 64), output_fmt="NCHW",
                                                 intermediates_only=True)
    assert maps[0].shape == (1, 16, 16, 16)


def test_reset_classifier_changes_the_outputs_and_keeps_the_features():
    torch.manual_seed(0)
    model = create_model("hiera_base_16x224", **TINY).eval()
    x = torch.randn(2, 3, *model.input_size)
    with torch.no_grad():
        features = model.forward_features(x)
        model.reset_classifier(11)
        assert model(x).shape == (2, 11) and model.num_classes == 11
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), features)  # no classifier: the pooled features
    assert model.num_classes == 0


def test_create_model_stores_the_preprocessing_the_weights_expect():
    video = create_model("hiera_base_16x224", **TINY).pretrained_cfg
    assert video == dict(mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), num_frames=4, sampling_rate=4,
                         target_fps=30.0, input_size=(3, 4, 32, 32), crop_size=(32, 32), short_side=37,
                         channel_order="RGB", layout="NCTHW")
    full = create_model("hiera_base_16x224", embed_dim=8, stages=(1, 1, 1, 1)).pretrained_cfg
    assert (full["num_frames"], full["crop_size"], full["short_side"]) == (16, (224, 224), 256)
    image = create_model("hiera_tiny_224", embed_dim=8).pretrained_cfg
    assert image["mean"] == (0.485, 0.456, 0.406) and image["layout"] == "NCHW" and "num_frames" not in image
