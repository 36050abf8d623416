"""hiera-video: video understanding with the spatio-temporal Hiera transformer.

Subpackages: ``models``, ``datasets``, ``engine``, ``evaluation``, ``inference``, ``config``.
``from hiera_video import VideoClassifier`` imports the inference code (and torch) on first use only, so
``import hiera_video`` itself stays cheap.
"""
import importlib

# Public names -> defining module, imported on first access (PEP 562).
_LAZY_EXPORTS = {
    "VideoClassifier": "hiera_video.inference.predictor",
}
__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str):
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module 'hiera_video' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
