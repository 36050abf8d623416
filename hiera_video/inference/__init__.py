"""Video classification inference: "what is happening in this clip?".

- :mod:`predictor`: :class:`VideoClassifier` (``from_checkpoint``, ``predict``, ``predict_many``), plain-dict
  results with top-k labels, per-window results and per-video errors.
- :mod:`loading`: model, config and class names from a toolkit or official checkpoint.
- :mod:`windows`: ``T x S`` view specs and the frames of each time window's views (the whole video's views
  are the test views of :mod:`hiera_video.datasets.test_views`).
- :mod:`sources`: video files, folders of them and in-memory frame arrays.
- :mod:`overlay`: the video with its top labels drawn on the frames.
- :mod:`report`: the readable top-k table and the JSON file of ``tools/predict.py``.
"""
import importlib

# Public names -> defining module, imported on first use so that ``import hiera_video`` stays cheap.
_EXPORTS = {
    "VideoClassifier": "predictor",
    "load_classifier": "loading",
    "ViewSpec": "windows",
    "write_overlay_video": "overlay",
    "format_results": "report",
    "write_json": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hiera_video.inference' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hiera_video.inference.{_EXPORTS[name]}"), name)
