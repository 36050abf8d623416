"""Video embeddings from a Hiera checkpoint, for k-NN / linear probes and retrieval.

A video's embedding is what the classifier head sees: the mean of the last stage's tokens, layer-normed
(``model.forward_features``; an MAE encoder's ``encoder_norm``), averaged over the video's test views
(:class:`hiera_video.datasets.test_views.MultiViewPipeline`, the views of ``tools/run_net.py`` testing).
``FeatureExtractor(model, cfg).extract(paths)`` does plain files, ``extract_dataset(dataset)`` a dataset
split in test mode; both return a :class:`FeatureSet`: ``features`` float32 ``[N, D]``, ``paths``,
``labels`` (dataset splits), ``view_features`` ``[N, V, D]`` on request and ``failed`` (path, reason)
for videos that could not be decoded: they are never dropped silently.

Files (:func:`save_features` / :func:`load_features`): one ``.npz`` with ``features``, ``paths``,
``failed`` (a ``[F, 2]`` array of path, reason), ``labels`` when known and ``view_features`` when asked
for. Large runs are written in shards (:func:`extract_to_shards`): shard ``k`` holds videos
``k * shard_size ...`` in ``NAME-0000k.npz`` beside ``NAME.index.json`` (the shard list, counts and
feature size); :func:`load_features` reads either. A shard is written atomically, so a rerun skips the
finished ones, and torchrun ranks take disjoint shards (:func:`shards_of_rank`).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from fvcore.common.config import CfgNode
from tqdm import tqdm

from hiera_video.config import load_config
from hiera_video.datasets.test_views import MultiViewPipeline
from hiera_video.engine.compiled import compile_for_inference
from hiera_video.engine.precision import autocast_context, log_precision
from hiera_video.models.checkpoint import checkpoint_num_classes, load_state_dict_into, read_checkpoint_contents
from hiera_video.utils.errors import UserError

from .loading import config_for_model_name, config_from_yaml_text
from .sources import open_source


class FeatureFileError(UserError, ValueError):
    """A features file (or shard index) that is missing its arrays or does not hold features."""


@dataclass
class FeatureSet:
    """Embeddings of videos: ``features`` float32 ``[N, D]`` in input order (decoded videos only), their
    ``paths``, integer ``labels`` ``[N]`` or None, ``view_features`` ``[N, V, D]`` or None and ``failed``:
    ``(path, reason)`` of every video that could not be decoded."""

    features: np.ndarray
    paths: list[str]
    labels: Optional[np.ndarray] = None
    view_features: Optional[np.ndarray] = None
    failed: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def concatenate(cls, parts: Sequence["FeatureSet"]) -> "FeatureSet":
        """The parts one after another (labels / view features kept only when every part has them)."""
        def joined(name: str) -> Optional[np.ndarray]:
            arrays = [getattr(part, name) for part in parts]
            return np.concatenate(arrays) if arrays and all(a is not None for a in arrays) else None

        features = [part.features for part in parts if len(part.features)]
        dim = features[0].shape[1] if features else 0
        return cls(np.concatenate(features) if features else np.zeros((0, dim), np.float32),
                   [p for part in parts for p in part.paths], joined("labels"), joined("view_features"),
                   [f for part in parts for f in part.failed])


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------
def load_feature_model(checkpoint: str | os.PathLike, cfg_file: Optional[str] = None,
                       model_name: Optional[str] = None, opts: Sequence[str] = ()) -> tuple[torch.nn.Module, CfgNode]:
    """The model of ``checkpoint`` (a classifier, or an MAE encoder when it has no head) in eval mode, and
    its config: ``cfg_file`` when given, else the one stored in a toolkit checkpoint, else the default of
    ``model_name`` (official weights); then the ``KEY VALUE`` overrides ``opts``. Every weight must load."""
    from hiera_video.engine.tasks import get_task

    checkpoint = os.fspath(checkpoint)
    contents = read_checkpoint_contents(checkpoint)
    if cfg_file:
        cfg = load_config(cfg_file, opts)
    elif contents.cfg_yaml is not None:
        cfg = config_from_yaml_text(contents.cfg_yaml, checkpoint, opts)
    elif model_name:
        cfg = config_for_model_name(model_name.removeprefix("mae_"), opts)
    else:
        raise UserError(f"{checkpoint} carries no config (official Hiera weights?): give the config it was "
                        "trained with (--cfg FILE) or the model name (--model hiera_base_16x224).")
    if model_name:
        cfg.MODEL.MODEL_NAME = model_name.removeprefix("mae_")
    num_classes = checkpoint_num_classes(contents.state_dict)
    cfg.TASK = "mae" if num_classes is None else "classification"
    if num_classes is not None:
        cfg.MODEL.NUM_CLASSES = num_classes
    model = get_task(cfg).build_model()
    load_state_dict_into(model, contents.state_dict, source=checkpoint, complete=True)
    return model.eval(), cfg


# ---------------------------------------------------------------------------------------------------------
# Views of the videos
# ---------------------------------------------------------------------------------------------------------
class VideoFileViews(torch.utils.data.Dataset):
    """Plain video files as test-mode items: ``{"views" [V, C, T, H, W], "index", "path"}``, or
    ``{"error", "index", "path"}`` for a file that cannot be decoded (missing, corrupt, too short)."""

    def __init__(self, paths: Sequence[str], pipeline: MultiViewPipeline, backend: str = "pyav",
                 decode_timeout: float = 0.0):
        self.paths, self.pipeline = [os.fspath(p) for p in paths], pipeline
        self.backend, self.decode_timeout = backend, decode_timeout

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        try:
            with open_source(path, self.backend, self.decode_timeout) as video:
                return {"views": self.pipeline.load(video), "index": index, "path": path}
        except Exception as error:  # one bad video is listed in ``failed``; the others go on
            reason = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
            return {"error": reason, "index": index, "path": path}


def _dataset_item(dataset: Any, index: int) -> dict:
    """Item ``index`` of a test-mode dataset with its ``path`` and ``label`` filled in."""
    item = dict(dataset[index])
    entry = dataset.entries[index]
    item.setdefault("path", entry.path)
    item.setdefault("label", entry.label)
    return item


class _DatasetViews(torch.utils.data.Dataset):
    """A test-mode dataset's items with ``path`` and ``label`` always present (picklable for workers)."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return _dataset_item(self.dataset, index)


def _keep_items(items: list[dict]) -> list[dict]:
    """The DataLoader collate function: the items as they are (videos have different view counts)."""
    return items


# ---------------------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------------------
class FeatureExtractor:
    """Embeds videos with ``model.forward_features`` over their test views (see the module docstring).

    Args:
        model: a Hiera classifier or MAE model (anything with ``forward_features(clips) -> [B, D]``).
        cfg: its config: test views ``TEST.NUM_ENSEMBLE_VIEWS`` x ``TEST.NUM_SPATIAL_CROPS`` of ``DATA.*``
            clips, ``TEST.BATCH_SIZE`` clips per forward pass (``batch_size`` overrides it).
        device: where the model runs (default CUDA when available, else CPU).
        per_view: also keep every view's embedding (``view_features`` ``[N, V, D]``).
        precision: ``fp32`` (default), ``bf16``, ``fp16`` autocast, or ``auto`` (see
            :func:`hiera_video.engine.precision.resolve_precision`).
        compile: run ``forward_features`` through :func:`hiera_video.engine.compiled.compile_for_inference`
            (pays on many videos: each batch shape compiles once).
    """

    def __init__(self, model: torch.nn.Module, cfg: CfgNode, device: Optional[str | torch.device] = None,
                 batch_size: Optional[int] = None, per_view: bool = False, precision: str = "fp32",
                 compile: bool = False):
        if not hasattr(model, "forward_features"):
            raise TypeError(f"{type(model).__name__} has no forward_features: give a Hiera or MAE model")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.precision = log_precision(precision, self.device)
        self.model = model.eval().to(self.device)
        self.forward_features = compile_for_inference(model.forward_features) if compile else model.forward_features
        self.cfg, self.per_view = cfg, per_view
        self.batch_size = batch_size or cfg.TEST.BATCH_SIZE
        self.pipeline = MultiViewPipeline.from_cfg(cfg)

    @torch.no_grad()
    def embed_views(self, views: torch.Tensor) -> torch.Tensor:
        """Embeddings float32 ``[N, D]`` (CPU) of clips ``[N, C, T, H, W]``, ``batch_size`` clips at a time."""
        with autocast_context(self.precision, self.device):
            chunks = [self.forward_features(chunk.to(self.device)).float().cpu()
                      for chunk in views.split(self.batch_size)]
        return torch.cat(chunks)

    def extract(self, paths: Sequence[str | os.PathLike], workers: int = 0, progress: bool = False) -> FeatureSet:
        """Embed video files (decoded in ``workers`` loader processes); undecodable ones go to ``failed``."""
        files = VideoFileViews(paths, self.pipeline, self.cfg.DATA.DECODING_BACKEND, self.cfg.DATA.DECODE_TIMEOUT)
        return self.extract_items(files, range(len(files)), workers, progress, with_labels=False)

    def extract_dataset(self, dataset: Any, indices: Optional[Sequence[int]] = None, workers: int = 0,
                        progress: bool = False) -> FeatureSet:
        """Embed the videos ``indices`` (default all) of a test-mode dataset (``build_dataset(cfg, split,
        mode="test")``), with their labels."""
        indices = range(len(dataset)) if indices is None else indices
        return self.extract_items(_DatasetViews(dataset), indices, workers, progress, with_labels=True)

    def extract_items(self, items: torch.utils.data.Dataset, indices: Sequence[int], workers: int = 0,
                      progress: bool = False, with_labels: bool = False) -> FeatureSet:
        """Embed items ``indices`` of a dataset of test-mode items (``views`` or ``error``, ``path``, and
        ``label`` when ``with_labels``), in order."""
        videos_per_batch = max(1, self.batch_size // max(1, self.pipeline.temporal * self.pipeline.spatial))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(items, list(indices)), batch_size=videos_per_batch,
                                             num_workers=workers, collate_fn=_keep_items)
        features, view_features, paths, labels, failed = [], [], [], [], []
        with tqdm(total=len(indices), desc="features", unit="video", disable=not progress, dynamic_ncols=True) as bar:
            for batch in loader:
                failed += [(item["path"], item["error"]) for item in batch if "error" in item]
                decoded = [item for item in batch if "error" not in item]
                for item, views in zip(decoded, self._embed_videos(decoded)):
                    features.append(views.mean(dim=0))
                    view_features.append(views)
                    paths.append(item["path"])
                    labels.append(item.get("label", -1))
                bar.update(len(batch))
        return self._feature_set(features, view_features, paths, labels if with_labels else None, failed)

    def _embed_videos(self, decoded: list[dict]) -> list[torch.Tensor]:
        """Per video its views' embeddings ``[V, D]``: every view of the batch in one pass."""
        if not decoded:
            return []
        embeddings = self.embed_views(torch.cat([item["views"] for item in decoded]))
        return list(embeddings.split([len(item["views"]) for item in decoded]))

    def _feature_set(self, features: list, view_features: list, paths: list, labels: Optional[list],
                     failed: list) -> FeatureSet:
        dim = getattr(self.model, "num_features", 0)
        stacked = torch.stack(features).numpy() if features else np.zeros((0, dim), np.float32)
        per_view = None
        if self.per_view:
            per_view = torch.stack(view_features).numpy() if view_features else np.zeros((0, 0, dim), np.float32)
        return FeatureSet(stacked.astype(np.float32), paths,
                          None if labels is None else np.asarray(labels, dtype=np.int64), per_view, failed)


# ---------------------------------------------------------------------------------------------------------
# Files: one .npz, or shards and an index
# ---------------------------------------------------------------------------------------------------------
def save_features(features: FeatureSet, path: str | os.PathLike) -> Path:
    """Write ``features`` to the ``.npz`` ``path`` atomically (a temporary file renamed); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"features": features.features.astype(np.float32), "paths": np.asarray(features.paths, dtype=str),
              "failed": np.asarray(features.failed, dtype=str).reshape(-1, 2)}
    if features.labels is not None:
        arrays["labels"] = features.labels
    if features.view_features is not None:
        arrays["view_features"] = features.view_features.astype(np.float32)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(temporary, path)
    return path


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Read a features ``.npz`` of :func:`save_features`, or all shards of a ``.index.json``."""
    path = Path(path)
    if not path.is_file():
        from hiera_video.utils.errors import MissingInputError

        raise MissingInputError(f"features file {path} does not exist")
    if path.name.endswith(".json"):
        index = json.loads(path.read_text(encoding="utf-8"))
        return FeatureSet.concatenate([load_features(path.parent / name) for name in index["shards"]])
    try:
        with np.load(path, allow_pickle=False) as arrays:
            contents = {name: arrays[name] for name in arrays.files}
    except (ValueError, OSError) as error:
        raise FeatureFileError(f"{path} is not a features .npz ({error})") from None
    if "features" not in contents or "paths" not in contents:
        raise FeatureFileError(f"{path} holds no 'features' and 'paths' arrays (written by tools/extract_features.py?)")
    failed = [(str(p), str(e)) for p, e in contents.get("failed", np.zeros((0, 2), str))]
    return FeatureSet(contents["features"].astype(np.float32), [str(p) for p in contents["paths"]],
                      contents.get("labels"), contents.get("view_features"), failed)


def shard_path(output: str | os.PathLike, shard: int) -> Path:
    """Shard ``shard`` of ``output`` (``feats.npz`` -> ``feats-00003.npz``)."""
    output = Path(output)
    return output.with_name(f"{output.stem}-{shard:05d}.npz")


def index_path(output: str | os.PathLike) -> Path:
    """The shard index of ``output`` (``feats.npz`` -> ``feats.index.json``)."""
    output = Path(output)
    return output.with_name(f"{output.stem}.index.json")


def shard_ranges(num_videos: int, shard_size: int) -> list[range]:
    """The video indices of each shard: consecutive runs of ``shard_size``."""
    if shard_size < 1:
        raise UserError(f"the shard size must be at least 1 video, got {shard_size}")
    return [range(start, min(start + shard_size, num_videos)) for start in range(0, num_videos, shard_size)]


def shards_of_rank(num_shards: int, rank: int, world_size: int) -> list[int]:
    """The shards process ``rank`` of ``world_size`` writes: ``rank, rank + world_size, ...`` (disjoint,
    together all of them)."""
    return list(range(rank, num_shards, world_size))


def extract_to_shards(embed: Any, num_videos: int, output: str | os.PathLike, shard_size: int,
                      rank: int = 0, world_size: int = 1) -> Iterator[int]:
    """Write this rank's missing shards of ``output``: ``embed(indices) -> FeatureSet`` for each; yields
    each shard number written. Finished shards (from an interrupted run) are skipped."""
    ranges = shard_ranges(num_videos, shard_size)
    for shard in shards_of_rank(len(ranges), rank, world_size):
        if shard_path(output, shard).is_file():
            continue
        save_features(embed(ranges[shard]), shard_path(output, shard))
        yield shard


def wait_for_shards(output: str | os.PathLike, num_videos: int, shard_size: int, poll_seconds: float = 2.0) -> None:
    """Return once every shard of ``output`` exists: rank 0 waiting for the other ranks' shards. Files, not
    a collective, so that a rank finishing hours before the others never hits a process-group timeout
    (torchrun stops every rank when one fails)."""
    shards = [shard_path(output, shard) for shard in range(len(shard_ranges(num_videos, shard_size)))]
    while not all(path.is_file() for path in shards):
        time.sleep(poll_seconds)


def write_index(output: str | os.PathLike, num_videos: int, shard_size: int) -> FeatureSet:
    """Write ``NAME.index.json`` over the finished shards of ``output`` and return all their features
    (every shard must exist: call it after all ranks finished)."""
    shards = [shard_path(output, shard) for shard in range(len(shard_ranges(num_videos, shard_size)))]
    features = FeatureSet.concatenate([load_features(path) for path in shards])
    index = {"shards": [path.name for path in shards], "shard_size": shard_size, "num_videos": num_videos,
             "num_features": len(features.features), "dim": int(features.features.shape[1]),
             "num_failed": len(features.failed)}
    index_path(output).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return features


def remove_shards(output: str | os.PathLike, num_videos: int, shard_size: int) -> None:
    """Delete the shards of ``output`` (after they were merged into one file)."""
    for shard in range(len(shard_ranges(num_videos, shard_size))):
        shard_path(output, shard).unlink(missing_ok=True)


# Videos per shard when one merged file is asked for: the unit a rerun after an interruption skips.
DEFAULT_PART_SIZE = 256


def extract_to_file(extractor: FeatureExtractor, output: str | os.PathLike, paths: Optional[Sequence[str]] = None,
                    dataset: Any = None, shard_size: Optional[int] = None, workers: int = 0, rank: int = 0,
                    world_size: int = 1, progress: bool = False) -> Optional[FeatureSet]:
    """Embed ``paths`` (files) or ``dataset`` (test mode) into ``output``: with ``shard_size``, shards and
    ``NAME.index.json``; without, one ``.npz`` (written in parts of :data:`DEFAULT_PART_SIZE` videos that
    are merged and removed). Finished shards / parts are skipped, so a rerun resumes. Each rank embeds its
    own shards; rank 0 waits for all (:func:`wait_for_shards`), writes the index or merged file and returns every video's features
    (other ranks return None)."""
    num_videos = len(paths) if dataset is None else len(dataset)
    size = shard_size or DEFAULT_PART_SIZE

    def embed(indices: range) -> FeatureSet:
        if dataset is None:
            return extractor.extract([paths[i] for i in indices], workers, progress)
        return extractor.extract_dataset(dataset, indices, workers, progress)

    for _ in extract_to_shards(embed, num_videos, output, size, rank, world_size):
        pass
    if rank != 0:
        return None
    wait_for_shards(output, num_videos, size)
    features = write_index(output, num_videos, size)
    if not shard_size:
        save_features(features, output)
        remove_shards(output, num_videos, size)
        index_path(output).unlink()
    return features
