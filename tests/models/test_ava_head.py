"""The AVA RoI head and the Hiera detector on tiny models."""
import pytest
import torch

from hiera_video.models import create_model
from hiera_video.models.ava_head import AVAHead, HieraAVADetector, backbone_feature_stride, create_ava_detector

TINY = dict(input_size=(8, 64, 64), embed_dim=16, num_heads=1, stages=(1, 1, 1, 1))


def identity_head(channels: int) -> AVAHead:
    """A head whose logits are the pooled features themselves (no dropout, identity projection)."""
    head = AVAHead(channels, num_classes=channels, feature_stride=32, dropout_rate=0.0)
    with torch.no_grad():
        head.projection.weight.copy_(torch.eye(channels))
        head.projection.bias.zero_()
    return head


def test_head_pools_each_box_from_its_own_region_and_clip():
    # Two clips of 4 x 2 x 2 cells (64 x 64 px at stride 32): channel 0 is 1 in the left column of clip 0,
    # channel 1 is 1 in the right column of clip 1.
    features = torch.zeros(2, 4, 2, 2, 2)
    features[0, :, :, 0, 0] = 1.0
    features[1, :, :, 1, 1] = 1.0
    boxes = torch.tensor([
        [0, 0.0, 0.0, 32.0, 64.0],  # clip 0, left half
        [0, 32.0, 0.0, 64.0, 64.0],  # clip 0, right half
        [1, 32.0, 0.0, 64.0, 64.0],  # clip 1, right half
    ])
    with torch.no_grad():
        logits = identity_head(2)(features, boxes)
    assert logits.shape == (3, 2)
    assert logits[0, 0] == pytest.approx(1.0) and logits[0, 1] == 0.0
    assert logits[1, 0] < 0.5 and logits[1, 1] == 0.0
    assert logits[2, 1] == pytest.approx(1.0) and logits[2, 0] == 0.0


def test_head_averages_over_time_then_takes_the_spatial_max():
    features = torch.zeros(1, 4, 2, 2, 1)
    features[0, :2] = 2.0  # first two of four time steps
    features[0, :, 1, 1] += 4.0  # one cell is higher at every time step
    with torch.no_grad():
        logits = identity_head(1)(features, torch.tensor([[0, 0.0, 0.0, 64.0, 64.0]]))
    assert logits.item() == pytest.approx(1.0 + 4.0)


def test_head_rejects_wrong_shapes():
    head = AVAHead(8)
    with pytest.raises(ValueError, match=r"\[B, T', H', W', C\]"):
        head(torch.zeros(1, 8, 2, 2), torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"\[K, 5\]"):
        head(torch.zeros(1, 2, 2, 2, 8), torch.zeros(1, 4))


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    backbone = create_model("hiera_base_16x224", num_classes=5, **TINY)
    return HieraAVADetector(backbone, AVAHead(backbone.num_features, num_classes=80, dropout_rate=0.5))


def test_detector_gives_80_logits_per_box_and_trains_end_to_end(detector):
    assert backbone_feature_stride(detector.backbone) == 32
    clips = torch.randn(2, 3, 8, 64, 64)
    boxes = torch.tensor([[0, 4.0, 4.0, 40.0, 60.0], [1, 10.0, 0.0, 63.0, 63.0], [1, 0.0, 0.0, 20.0, 30.0]])
    detector.train()
    logits = detector(clips, boxes)
    assert logits.shape == (3, 80)
    targets = torch.zeros(3, 80)
    targets[0, 11] = 1.0
    torch.nn.functional.binary_cross_entropy_with_logits(logits, targets).backward()
    gradients = {name: p.grad for name, p in detector.named_parameters()}
    assert all(g is not None for g in gradients.values()), "every parameter must get a gradient (DDP)"
    assert gradients["backbone.patch_embed.proj.weight"].abs().sum() > 0
    detector.zero_grad()


def test_detector_boxes_only_see_their_own_clip(detector):
    detector.eval()
    clips = torch.randn(2, 3, 8, 64, 64)
    boxes = torch.tensor([[1, 10.0, 0.0, 63.0, 63.0]])
    with torch.no_grad():
        before = detector(clips, boxes)
        clips[0] = torch.randn(3, 8, 64, 64)
        after = detector(clips, boxes)
    torch.testing.assert_close(before, after)


def test_create_ava_detector_from_a_named_model():
    model = create_ava_detector("hiera_base_16x224", num_classes=80, **TINY)
    assert model.input_size == (8, 64, 64)
    assert model.roi_head.projection.out_features == 80
    assert isinstance(model.backbone.head, torch.nn.Identity)


def test_detector_gets_layer_wise_lr_decay_like_its_backbone():
    from hiera_video.engine.optim import param_groups

    model = create_ava_detector("hiera_base_16x224", **TINY)
    scales = {name: group["lr_scale"] for group in param_groups(model, 0.05, layer_decay=0.5)
              for name in group["param_names"]}
    assert len(model.blocks) == 4
    assert scales["backbone.patch_embed.proj.weight"] == 0.5 ** 5
    assert scales["backbone.blocks.0.attn.qkv.weight"] == 0.5 ** 4
    assert scales["backbone.blocks.3.attn.qkv.weight"] == 0.5
    assert scales["roi_head.projection.weight"] == 1.0


def test_backbone_initializes_from_a_classification_checkpoint(tmp_path):
    from hiera_video.models import CheckpointError, load_checkpoint

    torch.manual_seed(1)
    classifier = create_model("hiera_base_16x224", num_classes=400, **TINY)
    torch.save({"model_state": classifier.state_dict()}, tmp_path / "k400.pth")
    detector = create_ava_detector("hiera_base_16x224", **TINY)
    head_before = detector.roi_head.projection.weight.clone()
    detector.load_backbone_checkpoint(str(tmp_path / "k400.pth"))
    torch.testing.assert_close(detector.backbone.blocks[0].attn.qkv.weight, classifier.blocks[0].attn.qkv.weight)
    torch.testing.assert_close(detector.roi_head.projection.weight, head_before)  # the classifier is not used
    with pytest.raises(CheckpointError, match="holds no weights"):
        load_checkpoint(detector, str(tmp_path / "k400.pth"))  # names differ: refused, not half-loaded
