"""Videos that are not local files (a URL, a shard member) opened with the usual decoders.

The bytes are written to a temporary local file that lives while the video is open: every backend, the
decode watchdog's helper process and PyAV's reopen-on-failed-seek then work unchanged. A training clip
needs the whole file anyway (its frames may lie anywhere), and a Kinetics clip is about 2 MB.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator, Optional

from hiera_video.datasets.decoding import VideoDecodeError, VideoReader, open_video
from hiera_video.utils import remote
from hiera_video.utils.errors import MissingInputError


@contextlib.contextmanager
def open_video_bytes(data: bytes, name: str, backend: str = "pyav",
                     timeout: Optional[float] = None) -> Iterator[VideoReader]:
    """``with open_video_bytes(data, "clip.mp4") as video``: the video in ``data`` (``name`` gives the
    extension), read through :func:`open_video`; the temporary file is removed on exit."""
    handle, path = tempfile.mkstemp(suffix=os.path.splitext(name)[1] or ".mp4", prefix="hiera_video_")
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(data)
        with open_video(path, backend, timeout=timeout) as video:
            yield video
    finally:
        os.unlink(path)


def open_video_url(url: str, data_cfg, timeout: Optional[float] = None):
    """``with open_video_url(url, cfg.DATA) as video``: a listed video's URL, read whole (``DATA.REMOTE_*``
    timeout and retries); a URL that does not exist fails like a missing file."""
    try:
        payload = remote.read_bytes(url, timeout=data_cfg.REMOTE_TIMEOUT, retries=data_cfg.REMOTE_RETRIES)
    except MissingInputError:
        raise VideoDecodeError(url, "file not found (check DATA.PATH_PREFIX and the list file)") from None
    return open_video_bytes(payload, url, data_cfg.DECODING_BACKEND, timeout=timeout)
