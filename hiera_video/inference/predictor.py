"""``VideoClassifier``: "what is happening in this clip?" for a file, a folder of files or a frame array.

Scores: the model returns logits; every view gets its softmax probabilities and a video's (or a window's)
scores are their average over its ``T x S`` views, so they lie in [0, 1] and sum to 1 over classes.
(Multi-view testing sums the same probabilities; the ranking is identical.)

Results are plain dicts (JSON-ready)::

    {"path": "clip.mp4", "duration": 10.0, "fps": 30.0, "num_frames": 300, "views": "5x3",
     "window": None, "top_k": [{"label": "juggling", "index": 3, "score": 0.71}, ...],
     "windows": [], "decoder": "pyav", "error": None}

With ``window=SECONDS``, ``windows`` holds ``{"start", "end", "top_k"}`` per window (seconds) and
``top_k`` is the average over all windows. A video that cannot be decoded gets ``error`` (the reason) and
empty ``top_k`` / ``windows`` in :meth:`VideoClassifier.predict_many`; :meth:`VideoClassifier.predict`
raises instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import torch
from fvcore.common.config import CfgNode
from tqdm import tqdm

from hiera_video.datasets.transforms import spatial_views
from hiera_video.engine.precision import autocast_context

from .sources import open_source
from .windows import ClipSampling, ViewSpec, time_windows, whole_video_indices, window_indices

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(device: Optional[str | torch.device] = None) -> torch.device:
    """``device`` as given, else CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """Autocast mode for :func:`autocast_context`: ``auto`` is bf16 (fp16 on GPUs without bf16) on CUDA
    and float32 on CPU; ``fp32`` disables autocast."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type != "cuda":
            return ""
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a CUDA device; on CPU use bf16 or fp32")
    return "" if precision == "fp32" else precision


@dataclass(frozen=True)
class ViewBuilder:
    """Decodes one video and turns it into normalized ``T x S`` views per window (runs in loader workers)."""

    sampling: ClipSampling
    crop_size: int
    short_side_one_crop: int
    mean: tuple
    std: tuple
    reverse_channels: bool
    backend: str
    decode_timeout: float

    @classmethod
    def from_cfg(cls, cfg: CfgNode, backend: Optional[str] = None, decode_timeout: Optional[float] = None):
        """From ``DATA.*`` / ``TEST.*``; ``backend`` and ``decode_timeout`` override the config's."""
        data = cfg.DATA
        return cls(ClipSampling.from_cfg(cfg), data.TEST_CROP_SIZE, data.TRAIN_JITTER_SCALES[0],
                   tuple(data.MEAN), tuple(data.STD), data.REVERSE_INPUT_CHANNEL,
                   backend or data.DECODING_BACKEND,
                   data.DECODE_TIMEOUT if decode_timeout is None else decode_timeout)

    def decode_short_side(self, spatial: int) -> int:
        """Short side the frames are scaled down to while decoding: the one the crops resize to."""
        return self.crop_size if spatial == 3 else self.short_side_one_crop

    def views(self, frames: torch.Tensor, spatial: int) -> torch.Tensor:
        """uint8 ``[N, T, H, W, C]`` clips -> float ``[N * S, C, T, crop, crop]``, temporal-major."""
        if self.reverse_channels:
            frames = frames.flip(-1)  # the model was trained on BGR frames (DATA.REVERSE_INPUT_CHANNEL)
        per_clip = [spatial_views(clip, self.crop_size, spatial, self.short_side_one_crop, self.mean, self.std)
                    for clip in frames]
        return torch.cat(per_clip)

    def chunks(self, video_id: int, source: Any, views: ViewSpec, window: Optional[float],
               fps: Optional[float] = None) -> Iterator[dict]:
        """Messages for one video: ``{"info"}`` first, then ``{"window", "views"}`` per window, then
        ``{"done"}``; or ``{"error"}`` as soon as anything fails (the video stops there)."""
        try:
            with open_source(source, self.backend, self.decode_timeout, fps) as video:
                windows = time_windows(video.duration, window)
                info = {"duration": video.duration, "fps": video.fps, "num_frames": video.num_frames,
                        "windows": windows}
                yield {"video": video_id, "info": info}
                for number, (start, end) in enumerate(windows):
                    if window:
                        indices = window_indices(video, self.sampling, views.temporal, start, end)
                    else:
                        indices = whole_video_indices(video, self.sampling, views.temporal)
                    frames = video.get_frames(indices.flatten().tolist(), self.decode_short_side(views.spatial))
                    frames = frames.view(*indices.shape, *frames.shape[1:])  # [N*T, H, W, C] -> [N, T, H, W, C]
                    yield {"video": video_id, "window": number, "views": self.views(frames, views.spatial)}
        except Exception as error:  # one bad video is reported in its record; the others go on
            reason = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
            yield {"video": video_id, "error": reason}
            return
        yield {"video": video_id, "done": True}


class _ChunkStream(torch.utils.data.IterableDataset):
    """The chunks of every video; loader worker ``w`` of ``W`` handles videos ``w, w + W, ...``."""

    def __init__(self, builder: ViewBuilder, sources: Sequence[Any], views: ViewSpec, window: Optional[float],
                 fps: Optional[float]):
        self.builder, self.sources, self.views, self.window, self.fps = builder, sources, views, window, fps

    def __iter__(self) -> Iterator[dict]:
        worker = torch.utils.data.get_worker_info()
        first, step = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        for video_id in range(first, len(self.sources), step):
            yield from self.builder.chunks(video_id, self.sources[video_id], self.views, self.window, self.fps)


@dataclass
class _VideoState:
    """What has arrived for one video while its windows are being scored."""

    info: Optional[dict] = None
    probabilities: dict = field(default_factory=dict)  # window number -> mean probabilities [K]
    done: bool = False
    error: Optional[str] = None

    def complete(self) -> bool:
        return self.error is not None or (
            self.done and self.info is not None and len(self.probabilities) == len(self.info["windows"]))


class VideoClassifier:
    """A video classifier ready to predict: model in eval mode, its config and class names.

    Args:
        model: a classifier returning logits ``[B, K]`` for clips ``[B, C, T, H, W]``.
        cfg: its config (``DATA.*`` sampling and crops, ``TEST.NUM_ENSEMBLE_VIEWS`` x
            ``TEST.NUM_SPATIAL_CROPS`` default views, ``TEST.BATCH_SIZE`` clips per forward pass).
        class_names: the ``K`` class names by index.
        device: where the model runs (default: CUDA when available, else CPU).
        precision: ``auto`` (bf16 / fp16 autocast on CUDA, float32 on CPU), ``fp32``, ``bf16``, ``fp16``.
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
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.eval().to(self.device)
        self.cfg, self.class_names = cfg, list(class_names)
        self.default_views = ViewSpec(cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS)
        self.batch_size = batch_size or cfg.TEST.BATCH_SIZE
        self.builder = ViewBuilder.from_cfg(cfg, backend, decode_timeout)

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
                window: Optional[float] = None, fps: Optional[float] = None) -> dict:
        """Predict one video: a file path, or uint8 frames ``[T, H, W, 3]`` (RGB) at ``fps``.

        ``views`` is ``"TxS"`` (default: the config's test views; with ``window``, ``1xS``), ``window`` a
        window length in seconds for per-window results. Raises ``VideoDecodeError`` (or ``ValueError``
        for a bad array) when the video cannot be read.
        """
        if not isinstance(video, (str, os.PathLike)):
            open_source(video, fps=fps)  # a bad array or a missing fps is the caller's ValueError
        result = self.predict_many([video], top_k=top_k, views=views, window=window, fps=fps)[0]
        if result["error"] is not None:
            from hiera_video.datasets.decoding import VideoDecodeError

            raise VideoDecodeError(result["path"], result["error"])
        return result

    def predict_many(self, videos: Sequence[Any], top_k: int = 5, views: Optional[str | ViewSpec] = None,
                     window: Optional[float] = None, fps: Optional[float] = None, num_workers: int = 0,
                     progress: bool = False) -> list[dict]:
        """Predict every video (paths or arrays), decoding in ``num_workers`` loader processes while the
        model runs; one record per video in input order. A video that fails gets ``error`` and the rest go
        on. ``progress`` shows a tqdm bar on stderr."""
        spec = self._views(views, window)
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        stream = _ChunkStream(self.builder, list(videos), spec, window, fps)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=num_workers)
        states = [_VideoState() for _ in videos]
        records: list[Optional[dict]] = [None] * len(videos)
        pending: list[tuple[tuple[int, int], torch.Tensor]] = []
        waiting: set[int] = set()  # videos whose messages have all come, some windows maybe not scored yet
        with tqdm(total=len(videos), desc="predict", unit="video", disable=not progress, dynamic_ncols=True) as bar:
            def finish_complete_videos() -> None:
                for video_id in [v for v in waiting if states[v].complete()]:
                    records[video_id] = self._record(videos[video_id], states[video_id], spec, window, top_k)
                    waiting.discard(video_id)
                    bar.update()

            for message in loader:
                state = states[message["video"]]
                if "info" in message:
                    state.info = message["info"]
                elif "views" in message:
                    pending.append(((message["video"], message["window"]), message["views"]))
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
    def _views(self, views: Optional[str | ViewSpec], window: Optional[float]) -> ViewSpec:
        if isinstance(views, ViewSpec):
            return views
        if views:
            return ViewSpec.parse(views)
        if window:
            # A window is short: one clip per window, all crops (the test views would repeat the same frames).
            return ViewSpec(1, self.default_views.spatial)
        return self.default_views

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
        """Run the model on the pending views (of any videos) and store each window's mean probabilities."""
        if not pending:
            return
        probabilities = self.class_probabilities(torch.cat([views for _, views in pending]))
        for ((video_id, window_number), _), window_probabilities in zip(
                pending, probabilities.split([len(views) for _, views in pending])):
            states[video_id].probabilities[window_number] = window_probabilities.mean(dim=0)
        pending.clear()

    def _top_k(self, probabilities: torch.Tensor, k: int) -> list[dict]:
        scores, indices = probabilities.topk(min(k, len(self.class_names)))
        return [{"label": self.class_names[i], "index": i, "score": round(float(s), 6)}
                for s, i in zip(scores.tolist(), indices.tolist())]

    def _record(self, source: Any, state: _VideoState, spec: ViewSpec, window: Optional[float], k: int) -> dict:
        is_path = isinstance(source, (str, os.PathLike))
        record = {
            "path": os.fspath(source) if is_path else "<array>",
            "duration": None, "fps": None, "num_frames": None, "views": str(spec), "window": window or None,
            "top_k": [], "windows": [], "decoder": self.builder.backend if is_path else "array", "error": state.error,
        }
        if state.error is not None:
            return record
        info = state.info
        record.update(duration=round(info["duration"], 6), fps=round(info["fps"], 6), num_frames=info["num_frames"])
        per_window = [state.probabilities[i] for i in range(len(info["windows"]))]
        record["top_k"] = self._top_k(torch.stack(per_window).mean(dim=0), k)
        if window:
            record["windows"] = [
                {"start": round(start, 6), "end": round(end, 6), "top_k": self._top_k(probabilities, k)}
                for (start, end), probabilities in zip(info["windows"], per_window)
            ]
        return record
