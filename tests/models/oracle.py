"""The official implementation as a test oracle, and tiny architectures for fast model tests."""
import pytest
import torch

from hiera_video.models import model_architecture

TINY_VIDEO = dict(input_size=(4, 64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 2, 1), num_classes=7)
TINY_IMAGE = dict(input_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 2, 1), num_classes=7)


def import_official():
    """The official ``hiera`` package (hiera-transformer), installed by the ``dev`` extra."""
    return pytest.importorskip("hiera", reason="the oracle needs `pip install -e '.[dev]'`")


def build_official(official, name: str, **overrides):
    """The official model class built with the same arguments as our named model plus ``overrides``."""
    from hiera.hiera_mae import MaskedAutoencoderHiera

    model_class, architecture = model_architecture(name)
    official_class = MaskedAutoencoderHiera if name.startswith("mae_") else official.Hiera
    return official_class(**{**architecture, **overrides})


def tiny_overrides(name: str) -> dict:
    """Small input and width for ``name``, keeping its stages, heads pattern and token geometry."""
    _, architecture = model_architecture(name)
    base = TINY_VIDEO if len(architecture.get("input_size", (224, 224))) == 3 else TINY_IMAGE
    heads = architecture["num_heads"]
    return {**base, "embed_dim": 8 * heads, "num_heads": heads, "stages": architecture["stages"]}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)).item()
