"""Mixup / cutmix: soft targets that sum to one and match how much of each clip was mixed in."""
import numpy as np
import pytest
import torch

from hiera_video.datasets.mixup import MixupCutmix, smooth_one_hot


def test_smooth_one_hot_puts_one_minus_smoothing_plus_share_on_the_label():
    targets = smooth_one_hot(torch.tensor([2, 0]), 5, smoothing=0.1)
    assert targets[0].tolist() == pytest.approx([0.02, 0.02, 0.92, 0.02, 0.02])
    assert targets.sum(1).tolist() == pytest.approx([1.0, 1.0])


def test_mixup_blends_each_clip_with_its_mirror_in_the_batch_by_lambda():
    np.random.seed(0)
    clips = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1, 1).expand(4, 3, 2, 8, 8).contiguous()
    labels = torch.tensor([0, 1, 2, 3])
    mixed, targets = MixupCutmix(4, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.0)(clips, labels)
    lam = targets[0, 0].item()
    assert 0 < lam < 1 and targets[0, 3].item() == pytest.approx(1 - lam)
    assert mixed[0].unique().item() == pytest.approx(lam * 0 + (1 - lam) * 3)
    assert targets.sum(1).tolist() == pytest.approx([1.0] * 4)


def test_cutmix_pastes_a_box_on_every_frame_and_weights_targets_by_its_area():
    np.random.seed(1)
    clips = torch.zeros(2, 3, 4, 32, 32)
    clips[1] = 1.0
    mixer = MixupCutmix(2, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.1)
    mixed, targets = mixer(clips, torch.tensor([0, 1]))
    pasted = mixed[0, 0] == 1.0  # [T, H, W]
    assert torch.equal(pasted[0], pasted[3])
    area = pasted[0].float().mean().item()
    lam = 1 - area
    off = 0.1 / 2
    assert targets[0].tolist() == pytest.approx([lam * (0.9 + off) + (1 - lam) * off,
                                                 lam * off + (1 - lam) * (0.9 + off)])


def test_probability_zero_leaves_clips_and_gives_smoothed_targets():
    clips = torch.randn(2, 3, 2, 8, 8)
    mixed, targets = MixupCutmix(3, probability=0.0, label_smoothing=0.0)(clips, torch.tensor([1, 2]))
    assert torch.equal(mixed, clips)
    assert targets.tolist() == [[0, 1, 0], [0, 0, 1]]


def test_odd_batch_is_refused_with_the_key_to_change():
    with pytest.raises(ValueError, match="TRAIN.BATCH_SIZE"):
        MixupCutmix(3)(torch.zeros(3, 3, 1, 4, 4), torch.tensor([0, 1, 2]))


def test_from_cfg_reads_the_mixup_keys(small_cfg):
    mixer = MixupCutmix.from_cfg(small_cfg)
    assert (mixer.num_classes, mixer.mixup_alpha, mixer.cutmix_alpha, mixer.label_smoothing) == (3, 0.8, 1.0, 0.1)
