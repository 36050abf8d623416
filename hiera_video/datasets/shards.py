"""Sharded datasets: a ``path label`` list written into tar shards in WebDataset's layout, and its manifest.

Layout of ``OUT/`` after ``make_shards(list, OUT, split)``:

- ``{split}-000000.tar``, ``{split}-000001.tar``, ...: per video three members sharing a key,
  ``<key>.mp4`` (the video's bytes unchanged; its own extension, e.g. ``.webm``), ``<key>.cls`` (the label
  as decimal text) and ``<key>.json`` (``path`` as listed, ``label``, ``class_name``). The ``webdataset``
  library and tar itself read them (tested).
- ``{split}.json``, the manifest: ``split``, ``source`` (the list), ``class_names`` (from ``classids.json``
  / ``labels.txt`` beside the list, else null), ``total``, ``missing`` (listed videos that do not exist:
  each is an empty member, which fails to decode as the missing file would, so shards count every listed
  video as the files do), and ``shards``: per shard its ``name``,
  ``count`` and ``samples`` (``key``, ``label``, ``path``, ``member``, ``offset``, ``size``: where the
  video's bytes lie in the tar). The datasets read a member by its offset (one ranged read, local or
  remote), so shards need no scan at training time and any sampler can index them.

Shards are planned from the list and the files' sizes alone (a new shard starts when the next video would
exceed ``shard_size`` bytes or ``max_per_shard`` videos), so a rerun makes the same plan: a shard already
on disk with the planned keys is kept, the others are (re)written, each to a temporary name then renamed.
"""
from __future__ import annotations

import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from typing import Iterable, Optional

from hiera_video.datasets.list_files import VideoEntry, read_class_names, read_path_label_list
from hiera_video.utils import remote
from hiera_video.utils.errors import MissingInputError, UserError

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class ManifestError(UserError, ValueError):
    """A shard manifest is missing, malformed or disagrees with the config; the message names it."""


@dataclass(frozen=True)
class ShardMember:
    """Where one video lies: the shard (path or URL), byte offset and size of its member, and what it is."""

    shard: str
    member: str
    offset: int
    size: int
    label: int
    path: str

    @property
    def location(self) -> str:
        """``shard/member``: how logs and ``metrics.json`` name this video."""
        return f"{self.shard}/{self.member}"


def parse_size(text: str) -> int:
    """Bytes of ``"500M"``, ``"1GB"``, ``"2g"``, ``"1048576"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?\s*", str(text).upper())
    if not match:
        raise UserError(f"shard size {text!r}: expected a number of bytes with an optional K, M, G or T")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def sample_key(index: int, path: str) -> str:
    """A WebDataset key for video ``index``: its number and its name, without dots or slashes (a key ends
    at the first dot of a member name)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return f"{index:08d}_" + re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def plan_shards(entries: list[VideoEntry], shard_size: int, max_per_shard: Optional[int] = None) -> list[list[int]]:
    """Indices of ``entries`` per shard, in list order; every shard holds at least one video."""
    shards: list[list[int]] = [[]]
    used = 0
    for index, entry in enumerate(entries):
        size = os.path.getsize(entry.path) if os.path.isfile(entry.path) else 0  # missing: an empty member
        full = max_per_shard is not None and len(shards[-1]) >= max_per_shard
        if shards[-1] and (used + size > shard_size or full):
            shards.append([])
            used = 0
        shards[-1].append(index)
        used += size
    return shards if shards[0] else []


def shard_name(split: str, number: int) -> str:
    """``{split}-{number:06d}.tar``."""
    return f"{split}-{number:06d}.tar"


def _sample(index: int, entry: VideoEntry, path: str, class_names: Optional[list[str]]) -> list[tuple[str, bytes]]:
    """The members of one video: ``(name, bytes)`` of ``<key>.cls``, ``<key>.json`` and ``<key>.<ext>``."""
    key = sample_key(index, entry.path)
    extension = os.path.splitext(entry.path)[1].lstrip(".").lower() or "mp4"
    video = b""  # a missing video stays listed and fails to decode, as the missing file would
    if os.path.isfile(entry.path):
        with open(entry.path, "rb") as handle:
            video = handle.read()
    metadata = {"path": path, "label": entry.label,
                "class_name": class_names[entry.label] if class_names else None}
    return [(f"{key}.cls", str(entry.label).encode("ascii")), (f"{key}.json", json.dumps(metadata).encode("utf-8")),
            (f"{key}.{extension}", video)]


def write_shard(path: str, samples: Iterable[list[tuple[str, bytes]]]) -> None:
    """Write the members of ``samples`` to the tar ``path`` atomically (a partial file never has its name).

    Plain :mod:`tarfile` (POSIX pax, read-only files, time 0: a shard's bytes depend on its videos alone):
    ``webdataset.TarWriter`` writes the same members, but importing it imports torch (seconds per run)."""
    partial = path + ".partial"
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
        for members in samples:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o444, 0
                archive.addfile(info, io.BytesIO(data))
    os.replace(partial, path)


def index_shard(path: str) -> dict[str, tuple[str, int, int]]:
    """Video members of the tar ``path``: key -> (member name, data offset, size)."""
    found = {}
    with tarfile.open(path, "r:") as archive:
        for member in archive:
            key, _, extension = member.name.partition(".")
            if member.isfile() and extension not in ("cls", "json"):
                found[key] = (member.name, member.offset_data, member.size)
    return found


def _kept_index(path: str, keys: list[str]) -> Optional[dict]:
    """The index of an existing shard holding exactly ``keys``, else None (missing or from another plan)."""
    if not os.path.isfile(path):
        return None
    try:
        found = index_shard(path)
    except tarfile.TarError:
        return None
    return found if sorted(found) == sorted(keys) else None


def _class_names_beside(list_path: str) -> Optional[list[str]]:
    """Class names from ``classids.json`` / ``labels.txt`` beside the list, None when there is neither."""
    for name in ("classids.json", "labels.txt"):
        path = os.path.join(os.path.dirname(os.path.abspath(list_path)), name)
        if os.path.isfile(path):
            return read_class_names(path)
    return None


def listed_path(entry: VideoEntry, path_prefix: str) -> str:
    """The path of ``entry`` as the list writes it (``DATA.PATH_PREFIX`` not joined)."""
    return os.path.relpath(entry.path, path_prefix) if path_prefix else entry.path


def make_shards(list_path: str, out_dir: str, split: str, path_prefix: str = "", separator: str = " ",
                shard_size: int = 2**30, max_per_shard: Optional[int] = None, progress: Optional[bool] = None
                ) -> dict:
    """Write the ``path label`` list ``list_path`` into shards and ``{split}.json`` in ``out_dir`` (see the
    module docstring); return the manifest. ``progress``: a tqdm bar (None: only on a terminal)."""
    from tqdm import tqdm

    entries = read_path_label_list(list_path, path_prefix, separator)
    class_names = _class_names_beside(list_path)
    listed = [listed_path(entry, path_prefix) for entry in entries]
    missing = [path for entry, path in zip(entries, listed) if not os.path.isfile(entry.path)]
    if len(missing) == len(entries):
        raise MissingInputError(f"none of the {len(entries)} videos of {list_path} exists, e.g. {entries[0].path} "
                                "(check --prefix)")
    os.makedirs(out_dir, exist_ok=True)
    shards = []
    with tqdm(total=len(entries), unit="video", desc=f"shards of {split}",
              disable=None if progress is None else not progress) as bar:
        for number, indices in enumerate(plan_shards(entries, shard_size, max_per_shard)):
            name = shard_name(split, number)
            path = os.path.join(out_dir, name)
            keys = [sample_key(i, entries[i].path) for i in indices]
            found = _kept_index(path, keys)
            if found is None:
                write_shard(path, (_sample(i, entries[i], listed[i], class_names) for i in indices))
                found = index_shard(path)
            shards.append(_shard_record(name, keys, [entries[i] for i in indices], [listed[i] for i in indices],
                                        found))
            bar.update(len(indices))
    manifest = {"split": split, "source": os.path.abspath(list_path), "class_names": class_names,
                "total": len(entries), "missing": missing, "shards": shards}
    _write_json(os.path.join(out_dir, f"{split}.json"), manifest)
    return manifest


def _shard_record(name: str, keys: list[str], entries: list[VideoEntry], paths: list[str], found: dict) -> dict:
    """A manifest's entry of one shard (``paths``: as listed)."""
    samples = [{"key": key, "label": entry.label, "path": path, "member": found[key][0],
                "offset": found[key][1], "size": found[key][2]} for key, entry, path in zip(keys, entries, paths)]
    return {"name": name, "count": len(samples), "samples": samples}


def _write_json(path: str, value) -> None:
    """Write JSON atomically."""
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=1)
    os.replace(partial, path)


def manifest_path(data_dir: str, split: str) -> str:
    """``{data_dir}/{split}.json`` (a local folder or a URL)."""
    return remote.join(data_dir, f"{split}.json")


def read_manifest(data_dir: str, split: str, timeout: float = remote.DEFAULT_TIMEOUT_S,
                  retries: int = remote.DEFAULT_RETRIES) -> dict:
    """The manifest of ``split`` in ``data_dir``; a :class:`ManifestError` naming it when missing or malformed."""
    path = manifest_path(data_dir, split)
    try:
        manifest = json.loads(remote.read_text(path, timeout=timeout, retries=retries))
    except (FileNotFoundError, MissingInputError):
        raise ManifestError(f"no shard manifest {path} (DATA.FORMAT shards, DATA.PATH_TO_DATA_DIR={data_dir!r}); "
                            "write one with tools/make_shards.py") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: not a shard manifest ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise ManifestError(f"{path}: not a shard manifest (no 'shards' list); rewrite it with tools/make_shards.py")
    return manifest


def manifest_members(manifest: dict, data_dir: str) -> list[ShardMember]:
    """Every video of a manifest, shards in order, with its shard's path or URL under ``data_dir``."""
    return [ShardMember(remote.join(data_dir, shard["name"]), sample["member"], sample["offset"], sample["size"],
                        sample["label"], sample["path"])
            for shard in manifest["shards"] for sample in shard["samples"]]


def read_member(member: ShardMember, timeout: float = remote.DEFAULT_TIMEOUT_S,
                retries: int = remote.DEFAULT_RETRIES) -> bytes:
    """The bytes of one video member (one ranged read)."""
    return remote.read_bytes(member.shard, member.offset, member.offset + member.size, timeout, retries)
