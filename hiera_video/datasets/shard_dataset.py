"""Kinetics / SSv2 clips read from tar shards (``DATA.FORMAT shards``): :class:`ShardVideoDataset`.

``DATA.PATH_TO_DATA_DIR`` is the folder (or URL) of ``tools/make_shards.py``'s output; the split's
manifest ``{split}.json`` lists every video with the byte offset of its member, so the dataset is
map-style: item ``i`` is one ranged read of shard bytes, then the same decoding, sampling and transforms as
the file-based datasets (:class:`~hiera_video.datasets.clip_dataset.VideoClipDataset`). The engine's
samplers therefore split it across ranks and loader workers without overlap, shuffle it per (seed, epoch),
resume mid-epoch and test every video once, exactly as for files; a run on shards gives the clips, the
weights and the metrics of the same run on the files. A member that does not decode fails like a bad file
(replaced and counted in training, listed in ``metrics.json`` in testing), named ``shard.tar/member``.
"""
from __future__ import annotations

from typing import Optional

from hiera_video.datasets.clip_dataset import VideoClipDataset
from hiera_video.datasets.list_files import VideoEntry
from hiera_video.datasets.remote_video import open_video_bytes
from hiera_video.datasets.shards import ManifestError, manifest_members, manifest_path, read_manifest, read_member

# The file-based reader each TRAIN.DATASET / TEST.DATASET stands for, by how it samples clips in time.
TEMPORAL_SAMPLING = {"kinetics": "clip", "ssv2": "segment"}


class ShardVideoDataset(VideoClipDataset):
    """The videos of one split's shards; ``mode`` defaults to ``"train"`` for the train split."""

    def __init__(self, cfg, split: str, mode: Optional[str] = None, temporal_sampling: str = "clip"):
        data = cfg.DATA
        manifest = read_manifest(data.PATH_TO_DATA_DIR, split, data.REMOTE_TIMEOUT, data.REMOTE_RETRIES)
        members = manifest_members(manifest, data.PATH_TO_DATA_DIR)
        class_names = _class_names(manifest, cfg.MODEL.NUM_CLASSES, manifest_path(data.PATH_TO_DATA_DIR, split))
        self.members = {member.location: member for member in members}
        entries = [VideoEntry(member.location, member.label, member.path) for member in members]
        self.split = split
        super().__init__(cfg, entries, class_names, mode or ("train" if split == "train" else "test"),
                         temporal_sampling=temporal_sampling)

    def open(self, entry: VideoEntry):
        """The video of one shard member, read with one ranged request and decoded as a file."""
        data = self.cfg.DATA
        member = self.members[entry.path]
        payload = read_member(member, data.REMOTE_TIMEOUT, data.REMOTE_RETRIES)
        return open_video_bytes(payload, member.member, data.DECODING_BACKEND, timeout=data.DECODE_TIMEOUT or None)


def _class_names(manifest: dict, num_classes: int, where: str) -> list[str]:
    """The manifest's class names (checked against MODEL.NUM_CLASSES), else ``"0"``, ``"1"``, ...; every
    label must lie in ``[0, num_classes)``."""
    labels = [sample["label"] for shard in manifest["shards"] for sample in shard["samples"]]
    if labels and not 0 <= min(labels) <= max(labels) < num_classes:
        raise ManifestError(f"{where}: labels {min(labels)}..{max(labels)} out of range [0, {num_classes}); "
                            "check MODEL.NUM_CLASSES")
    names = manifest.get("class_names")
    if names is None:
        return [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ManifestError(f"{where}: {len(names)} class names for {num_classes} classes (MODEL.NUM_CLASSES)")
    return list(names)


def build_shard_dataset(cfg, split: str, name: str, mode: Optional[str] = None) -> ShardVideoDataset:
    """The shards of ``split`` read like the file-based dataset ``name`` ("kinetics" or "ssv2") reads files."""
    if name not in TEMPORAL_SAMPLING:
        raise ManifestError(f"DATA.FORMAT shards reads {sorted(TEMPORAL_SAMPLING)} datasets, not {name!r}; "
                            "use DATA.FORMAT files")
    return ShardVideoDataset(cfg, split, mode=mode, temporal_sampling=TEMPORAL_SAMPLING[name])
