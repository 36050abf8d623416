"""Named Hiera models (the official release's names) and ``create_model``."""
from typing import Dict, List, Optional, Tuple

import torch.nn as nn

from .checkpoint import checkpoint_num_classes, load_state_dict_into, read_checkpoint
from .hiera import Hiera
from .hiera_mae import MaskedAutoencoderHiera

_ARCHITECTURES: Dict[str, Tuple[type, dict]] = {}

# Paper, Table 2: width, heads and blocks per stage.
_SIZES = {
    "tiny": dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2)),
    "small": dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2)),
    "base": dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)),
    "base_plus": dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)),
    "large": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)),
    "huge": dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)),
}
# 16 frames of 224 px: 3x7x7 patches at stride 2x4x4, 1x8x8-token mask units, spatial-only pooling.
_VIDEO_16x224 = dict(
    input_size=(16, 224, 224), num_classes=400, q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8),
    patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4), patch_padding=(1, 3, 3), sep_pos_embed=True,
)
# MAE models pool twice, so the fused encoder output keeps 2x2 tokens per mask unit.
_MAE = dict(q_pool=2)
# The input the official checkpoints were trained on: Kinetics clips (16 frames every 4th frame at 30 fps,
# the toolkit's DATA.* defaults) and ImageNet images; RGB in [0, 1], then (x - mean) / std.
_VIDEO_PREPROCESSING = dict(mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), sampling_rate=4, target_fps=30.0,
                            channel_order="RGB")
_IMAGE_PREPROCESSING = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channel_order="RGB")
# single-view evaluation resizes the short side to crop / 0.875 (256 for 224) before the centre crop
_CROP_FRACTION = 0.875


def register_model(name: str, model_class: type, **architecture) -> None:
    """Register ``name`` as ``model_class(**architecture)``; ``create_model`` applies overrides on top."""
    _ARCHITECTURES[name] = (model_class, architecture)


def model_architecture(name: str) -> Tuple[type, dict]:
    """The class and constructor arguments of a named model."""
    if name not in _ARCHITECTURES:
        from difflib import get_close_matches
        close = get_close_matches(name, _ARCHITECTURES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Available: {', '.join(list_models())}.")
    model_class, architecture = _ARCHITECTURES[name]
    return model_class, dict(architecture)


for _size, _arch in _SIZES.items():
    register_model(f"hiera_{_size}_224", Hiera, **_arch)
    register_model(f"mae_hiera_{_size}_224", MaskedAutoencoderHiera, **_arch, **_MAE)
    if _size not in ("tiny", "small"):
        register_model(f"hiera_{_size}_16x224", Hiera, **_arch, **_VIDEO_16x224)
        register_model(f"mae_hiera_{_size}_16x224", MaskedAutoencoderHiera, **_arch, **_VIDEO_16x224, **_MAE)


def default_preprocessing(model: nn.Module) -> dict:
    """What a named model's checkpoints expect as input (stored as ``model.pretrained_cfg``).

    Keys: ``input_size`` (C, [T,] H, W), ``mean`` / ``std`` (per RGB channel, for pixels in [0, 1]),
    ``short_side`` (resize the shorter side to this, then centre-crop ``crop_size`` (H, W)), ``channel_order``,
    ``layout``; video
    adds ``num_frames``, ``sampling_rate`` (frames apart at ``target_fps``) and ``target_fps``.
    """
    size = tuple(model.input_size)
    video = len(size) == 3
    preprocessing = dict(_VIDEO_PREPROCESSING if video else _IMAGE_PREPROCESSING)
    preprocessing.update(input_size=(model.in_chans, *size), crop_size=size[-2:],
                         short_side=round(min(size[-2:]) / _CROP_FRACTION),
                         layout="NCTHW" if video else "NCHW")
    if video:
        preprocessing["num_frames"] = size[0]
    return preprocessing


def list_models() -> List[str]:
    """Names accepted by ``create_model``."""
    return sorted(_ARCHITECTURES)


def create_model(name: str, checkpoint: Optional[str] = None, num_classes: Optional[int] = None,
                 **overrides) -> nn.Module:
    """Build the named model, overriding any architecture argument, and optionally load weights.

    With a ``checkpoint`` and no ``num_classes``, the classifier takes the checkpoint head's size. See
    ``hiera_video.models.load_checkpoint`` for the formats accepted.
    """
    model_class, architecture = model_architecture(name)
    state_dict = read_checkpoint(checkpoint) if checkpoint else None
    if num_classes is None and state_dict is not None:
        num_classes = checkpoint_num_classes(state_dict)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    try:
        model = model_class(**{**architecture, **overrides})
    except TypeError as error:
        raise ValueError(f"cannot build {name} with overrides {overrides}: {error}") from error
    model.pretrained_cfg = default_preprocessing(model)
    if state_dict is not None:
        load_state_dict_into(model, state_dict, source=checkpoint)
    return model
