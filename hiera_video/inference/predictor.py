"""``VideoClassifier``: "what is happening in this clip?" for a file, a folder of files or a frame array.

Scores: the model returns logits; every view gets its softmax probabilities and a video's (or a window's)
scores are their average over its ``T x S`` views, so they lie in [0, 1] and sum to 1 over classes.
(Multi-view testing sums the same probabilities of the same views: the ranking is identical.)

Results are plain dicts (JSON-ready)::

    {"path": "clip.mp4", "duration": 10.0, "fps": 30.0, "num_frames": 300, "views": "5x3",
     "window": None, "window_views": None, "top_k": [{"label": "juggling", "index": 3, "score": 0.71}, ...],
     "windows": [], "decoder": "pyav", "error": None}

``top_k`` always scores the whole video with its ``views`` (default: the config's test views, those of
``tools/run_net.py`` testing, :class:`hiera_video.datasets.test_views.MultiViewPipeline`). With
``window=SECONDS``, ``windows`` also holds ``{"start", "end", "top_k"}`` per window (seconds), each window
scored with its own ``window_views`` (default ``1 x`` the config's crops). A video that cannot be decoded
gets ``error`` (the reason) and empty ``top_k`` / ``windows`` in :meth:`VideoClassifier.predict_many`;
:meth:`VideoClassifier.predict` raises instead. So does a video whose scores come out NaN or infinite:
records hold finite numbers only (``duration`` / ``fps`` None when unknown).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import torch
from fvcore.common.config import CfgNode
from tqdm import tqdm

from hiera_video.datasets.test_views import MultiViewPipeline
from hiera_video.engine.precision import autocast_context, log_precision

from .sources import open_source
from .windows import ViewSpec, check_window_seconds, time_windows, window_indices



def resolve_device(device: Optional[str | torch.device] = None) -> torch.device:
    """``device`` as given, else CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return device


@dataclass(frozen=True)
class ViewBuilder:
    """Decodes one video and turns it into normalized views (runs in loader workers): the whole video's
    ``video_views`` and, with a window length, each window's ``window_views``."""

    video_views: MultiViewPipeline
    window_views: MultiViewPipeline
    backend: str
    decode_timeout: float

    def window_views_of(self, video: Any, start: float, end: float) -> torch.Tensor:
        """The ``window_views`` of ``[start, end)`` seconds of ``video``: float ``[clips * crops, C, frames,
        crop, crop]``, temporal-major."""
        pipeline = self.window_views
        indices = window_indices(video, pipeline.sampling, pipeline.temporal, start, end)
        return pipeline.views(pipeline.read_frames(video, indices))

    def chunks(self, video_id: int, source: Any, window: Optional[float], fps: Optional[float] = None
               ) -> Iterator[dict]:
        """Messages for one video: ``{"info"}`` first, then ``{"part", "views"}`` for the whole video (part
        None) and each window (part = its number), then ``{"done"}``; or ``{"error"}`` as soon as anything
        fails (the video stops there)."""
        try:
            with open_source(source, self.backend, self.decode_timeout, fps) as video:
                windows = time_windows(video.duration, window) if window else []
                info = {"duration": video.duration, "fps": video.fps, "num_frames": video.num_frames,
                        "windows": windows}
                yield {"video": video_id, "info": info}
                yield {"video": video_id, "part": None, "views": self.video_views.load(video)}
                for number, (start, end) in enumerate(windows):
                    yield {"video": video_id, "part": number, "views": self.window_views_of(video, start, end)}
        except Exception as error:  # one bad video is reported in its record; the others go on
            reason = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
            yield {"video": video_id, "error": reason}
            return
        yield {"video": video_id, "done": True}


class _ChunkStream(torch.utils.data.IterableDataset):
    """The chunks of every video; loader worker ``w`` of ``W`` handles videos ``w, w + W, ...``."""

    def __init__(self, builder: ViewBuilder, sources: Sequence[Any], window: Optional[float],
                 fps: Optional[float]):
        self.builder, self.sources, self.window, self.fps = builder, sources, window, fps

    def __iter__(self) -> Iterator[dict]:
        worker = torch.utils.data.get_worker_info()
        first, step = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        for video_id in range(first, len(self.sources), step):
            yield from self.builder.chunks(video_id, self.sources[video_id], self.window, self.fps)


@dataclass
class _VideoState:
    """What has arrived for one video while its windows are being scored."""

    info: Optional[dict] = None
    probabilities: dict = field(default_factory=dict)  # part (None: whole video, else window) -> mean [K]
    done: bool = False
    error: Optional[str] = None

    def complete(self) -> bool:
        return self.error is not None or (
            self.done and self.info is not None and len(self.probabilities) == 1 + len(self.info["windows"]))


class VideoClassifier:
    """A video classifier ready to predict: model in eval mode, its config and class names.

    Args:
        model: a classifier returning logits ``[B, K]`` for clips ``[B, C, T, H, W]``.
        cfg: its config (``DATA.*`` sampling and crops, ``TEST.NUM_ENSEMBLE_VIEWS`` x
            ``TEST.NUM_SPATIAL_CROPS`` default views, ``TEST.BATCH_SIZE`` clips per forward pass).
        class_names: the ``K`` class names by index.
        device: where the model runs (default: CUDA when available, else CPU).
        precision: ``auto`` (bf16 / fp16 autocast on CUDA, bf16 on CPUs with AMX / AVX512-BF16, else float32),
            ``fp32``, ``bf16``, ``fp16``.
        batch_size: clips per forward pass (default ``TEST.BATCH_SIZE``); views of several videos share one.
        backend, decode_timeout: decoder and per-request timeout in seconds (0: none); default from
            ``DATA.DECODING_BACKEND`` / ``DATA.DECODE_TIMEOUT``.
    """

    def __init__(self, model: torch.nn.Module, cfg: CfgNode, class_names: Sequence[str],
                 device: Optional[str | torch.device] = None, precision: str = "auto",
                 batch_size: Optional[int] = None, backend: Optional[str] = None,
                 decode_timeout: Optional[float] = None):
        if len(class_names) != getattr(model, "num_classes", len(class_names)):
            raise ValueError(f"{len(class_names)} class names for a model with {model.num_classes} classes")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 clip, got {batch_size}")
        self.device = resolve_device(device)
        self.precision = log_precision(precision, self.device)
        self.model = model.eval().to(self.device)
        self.cfg, self.class_names = cfg, list(class_names)
        self.test_views = MultiViewPipeline.from_cfg(cfg)  # the views of tools/run_net.py testing
        self.batch_size = batch_size or cfg.TEST.BATCH_SIZE
        self.backend = backend or cfg.DATA.DECODING_BACKEND
        self.decode_timeout = cfg.DATA.DECODE_TIMEOUT if decode_timeout is None else decode_timeout

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike, cfg: Optional[str] = None,
                        model_name: Optional[str] = None, labels: Optional[str] = None, opts: Sequence[str] = (),
                        **kwargs) -> "VideoClassifier":
        """Load a checkpoint (see :func:`hiera_video.inference.loading.load_classifier`): a toolkit
        checkpoint alone, or an official one with ``cfg`` (YAML file) or ``model_name``, and ``labels``
        (label file). ``kwargs`` go to the constructor (``device``, ``precision``, ``batch_size``, ...)."""
        from .loading import load_classifier

        loaded = load_classifier(checkpoint, cfg_file=cfg, model_name=model_name, labels_file=labels, opts=opts)
        return cls(loaded.model, loaded.cfg, loaded.class_names, **kwargs)

    # -----------------------------------------------------------------------------------------------------
    def predict(self, video, top_k: int = 5, views: Optional[str | ViewSpec] = None,
                window: Optional[float] = None, window_views: Optional[str | ViewSpec] = None,
                fps: Optional[float] = None) -> dict:
        """Predict one video: a file path, or uint8 frames ``[T, H, W, 3]`` (RGB) at ``fps``.

        ``views`` is ``"TxS"`` for the whole video (default: the config's test views), ``window`` a window
        length in seconds for per-window results too, each window with ``window_views`` (default: 1 x the
        config's crops). Raises ``VideoDecodeError`` (or ``ValueError`` for a bad array) when the video
        cannot be read.
        """
        if not isinstance(video, (str, os.PathLike)):
            open_source(video, fps=fps)  # a bad array or a missing fps is the caller's ValueError
        result = self.predict_many([video], top_k=top_k, views=views, window=window, window_views=window_views,
                                   fps=fps)[0]
        if result["error"] is not None:
            from hiera_video.datasets.decoding import VideoDecodeError

            raise VideoDecodeError(result["path"], result["error"])
        return result

    def predict_many(self, videos: Sequence[Any], top_k: int = 5, views: Optional[str | ViewSpec] = None,
                     window: Optional[float] = None, window_views: Optional[str | ViewSpec] = None,
                     fps: Optional[float] = None, num_workers: int = 0, progress: bool = False) -> list[dict]:
        """Predict every video (paths or arrays), decoding in ``num_workers`` loader processes while the
        model runs; one record per video in input order (arguments as :meth:`predict`). A video that fails
        gets ``error`` and the rest go on. ``progress`` shows a tqdm bar on stderr."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if window_views and not window:
            raise ValueError("window_views are the views of each window: give a window length too")
        if window is not None:
            check_window_seconds(window)
        video_spec, window_spec = self.view_specs(views, window_views)
        builder = ViewBuilder(self.test_views.with_views(video_spec.temporal, video_spec.spatial),
                              self.test_views.with_views(window_spec.temporal, window_spec.spatial),
                              self.backend, self.decode_timeout)
        stream = _ChunkStream(builder, list(videos), window, fps)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=num_workers)
        states = [_VideoState() for _ in videos]
        records: list[Optional[dict]] = [None] * len(videos)
        pending: list[tuple[tuple[int, Optional[int]], torch.Tensor]] = []  # ((video, part), views)
        waiting: set[int] = set()  # videos whose messages have all come, some windows maybe not scored yet
        with tqdm(total=len(videos), desc="predict", unit="video", disable=not progress, dynamic_ncols=True) as bar:
            def finish_complete_videos() -> None:
                for video_id in [v for v in waiting if states[v].complete()]:
                    records[video_id] = self._record(videos[video_id], states[video_id], video_spec,
                                                     window_spec if window else None, window, top_k)
                    waiting.discard(video_id)
                    bar.update()

            for message in loader:
                state = states[message["video"]]
                if "info" in message:
                    state.info = message["info"]
                elif "views" in message:
                    pending.append(((message["video"], message["part"]), message["views"]))
                    if sum(len(v) for _, v in pending) >= self.batch_size:
                        self._score(pending, states)
                else:
                    state.error, state.done = message.get("error"), True
                    waiting.add(message["video"])
                finish_complete_videos()
            self._score(pending, states)
            finish_complete_videos()
        return records

    # -----------------------------------------------------------------------------------------------------
    def view_specs(self, views: Optional[str | ViewSpec] = None,
                   window_views: Optional[str | ViewSpec] = None) -> tuple[ViewSpec, ViewSpec]:
        """(whole-video views, views of each window): ``views`` (default: the config's test views) and
        ``window_views`` (default: 1 x the config's crops; a window is short, more clips repeat its frames)."""
        test_views = self.test_views
        return (_as_spec(views) or ViewSpec(test_views.temporal, test_views.spatial),
                _as_spec(window_views) or ViewSpec(1, test_views.spatial))

    @torch.no_grad()
    def class_probabilities(self, clips: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities ``[N, K]`` (float32, CPU) of clips ``[N, C, T, H, W]``, ``batch_size`` at a time."""
        probabilities = []
        for chunk in clips.split(self.batch_size):
            with autocast_context(self.precision, self.device):
                logits = self.model(chunk.to(self.device, non_blocking=True))
            probabilities.append(logits.float().softmax(dim=-1).cpu())
        return torch.cat(probabilities)

    def _score(self, pending: list, states: list[_VideoState]) -> None:
        """Run the model on the pending views (of any videos) and store each part's mean probabilities."""
        if not pending:
            return
        probabilities = self.class_probabilities(torch.cat([views for _, views in pending]))
        for ((video_id, part), _), part_probabilities in zip(
                pending, probabilities.split([len(views) for _, views in pending])):
            states[video_id].probabilities[part] = part_probabilities.mean(dim=0)
        pending.clear()

    def _top_k(self, probabilities: torch.Tensor, k: int) -> list[dict]:
        scores, indices = probabilities.topk(min(k, len(self.class_names)))
        return [{"label": self.class_names[i], "index": i, "score": round(float(s), 6)}
                for s, i in zip(scores.tolist(), indices.tolist())]

    def _non_finite_scores(self, state: _VideoState) -> Optional[str]:
        """The error of a video whose scores hold NaN or infinity (a record must stay valid JSON), else None."""
        if all(bool(torch.isfinite(scores).all()) for scores in state.probabilities.values()):
            return None
        overflow = f" (an overflow in {self.precision} autocast? try fp32 precision)" if self.precision else ""
        return f"the model's scores are NaN or infinite{overflow}"

    def _record(self, source: Any, state: _VideoState, views: ViewSpec, window_views: Optional[ViewSpec],
                window: Optional[float], k: int) -> dict:
        is_path = isinstance(source, (str, os.PathLike))
        record = {
            "path": os.fspath(source) if is_path else "<array>",
            "duration": None, "fps": None, "num_frames": None, "views": str(views), "window": window or None,
            "window_views": str(window_views) if window_views else None,
            "top_k": [], "windows": [], "decoder": self.backend if is_path else "array",
            "error": state.error or self._non_finite_scores(state),
        }
        if record["error"] is not None:
            return record
        info = state.info
        record.update(duration=_finite_or_none(info["duration"]), fps=_finite_or_none(info["fps"]),
                      num_frames=info["num_frames"])
        record["top_k"] = self._top_k(state.probabilities[None], k)
        record["windows"] = [
            {"start": round(start, 6), "end": round(end, 6), "top_k": self._top_k(state.probabilities[number], k)}
            for number, (start, end) in enumerate(info["windows"])
        ]
        return record


def _finite_or_none(value: float) -> Optional[float]:
    """``value`` rounded to 6 decimals, None when NaN or infinite (unknown; JSON has no NaN)."""
    return round(value, 6) if math.isfinite(value) else None


def _as_spec(views: Optional[str | ViewSpec]) -> Optional[ViewSpec]:
    """``views`` as a ViewSpec (``"5x3"`` parsed), None when not given."""
    if views is None or isinstance(views, ViewSpec):
        return views
    return ViewSpec.parse(views) if views else None
