"""Reading local paths and fsspec URLs (``http(s)://``, ``s3://``, ``gs://``, ...) through one set of functions.

A URL is read with fsspec (the ``s3fs`` / ``gcsfs`` backends when installed; ``http(s)`` needs aiohttp,
installed with the toolkit). Every read has a timeout and is retried with a growing pause; a read that
still fails raises :class:`RemoteReadError`, whose message names the URL. Local paths go through plain
``open`` (and keep their ``FileNotFoundError``). A byte range (a shard member) is read with one ranged
request; a server that ignores ``Range`` and sends the whole file still gives the right bytes.

:func:`local_copy` gives a local path for any path or URL (downloaded once into a cache folder), for
readers that need a file (``torch.load`` of a checkpoint); :func:`local_folder` does the same for the small
files of a list folder.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from typing import Iterable, Optional

from hiera_video.utils.errors import MissingInputError, UserError

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RETRIES = 3
CACHE_VARIABLE = "HIERA_VIDEO_CACHE"


class RemoteReadError(UserError, OSError):
    """A URL could not be read after its retries; the message names the URL and the last error."""


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path (``file://`` counts as a URL)."""
    return "://" in os.fspath(path)


def join(base: str, *names: str) -> str:
    """``base`` and ``names`` joined with ``/`` for a URL, with ``os.path.join`` for a local folder."""
    if not is_url(base):
        return os.path.join(base, *names)
    return "/".join([base.rstrip("/"), *names])


def _filesystem(url: str, timeout: float):
    """The fsspec filesystem of ``url`` and the path within it (http: with a total timeout per request)."""
    import fsspec

    options = {}
    if url.startswith(("http://", "https://")):
        import aiohttp

        options["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=timeout)}
    try:
        return fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as error:
        raise RemoteReadError(f"{url}: no fsspec backend for this URL ({error}); install it (e.g. s3fs, "
                              "gcsfs)") from None


def _retried(url: str, read, retries: int):
    """``read()`` with up to ``retries`` more tries after a failure (pauses of 0.5 s, 1 s, 2 s, ...); a
    missing file is not retried."""
    for attempt in range(retries + 1):
        try:
            return read()
        except FileNotFoundError:
            raise MissingInputError(f"{url}: not found") from None
        except Exception as error:  # network errors have no common base class across backends
            if attempt == retries:
                raise RemoteReadError(f"{url}: cannot read after {retries + 1} tries ({type(error).__name__}: "
                                      f"{error})") from None
            time.sleep(0.5 * 2**attempt)


def read_bytes(path: str, start: Optional[int] = None, end: Optional[int] = None,
               timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES) -> bytes:
    """Bytes ``[start, end)`` of a local file or URL (the whole file when both are None)."""
    if not is_url(path):
        with open(path, "rb") as handle:
            handle.seek(start or 0)
            return handle.read(-1 if end is None else end - (start or 0))
    fs, inner = _filesystem(path, timeout)

    def read() -> bytes:
        data = fs.cat_file(inner, start=start, end=end)
        if end is not None and len(data) > end - (start or 0):  # the server ignored Range
            data = data[start or 0:end]
        return data

    return _retried(path, read, retries)


def read_text(path: str, timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES) -> str:
    """A local file or URL as UTF-8 text."""
    return read_bytes(path, timeout=timeout, retries=retries).decode("utf-8-sig")


def exists(path: str, timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES) -> bool:
    """Whether a local path or URL exists."""
    if not is_url(path):
        return os.path.exists(path)
    fs, inner = _filesystem(path, timeout)
    return bool(_retried(path, lambda: fs.exists(inner), retries))


def cache_folder() -> str:
    """Where :func:`local_copy` keeps downloads: ``$HIERA_VIDEO_CACHE``, else ``~/.cache/hiera_video``."""
    return os.environ.get(CACHE_VARIABLE) or os.path.join(os.path.expanduser("~"), ".cache", "hiera_video")


def local_folder(folder: str, names: Iterable[str], timeout: float = DEFAULT_TIMEOUT_S,
                 retries: int = DEFAULT_RETRIES) -> str:
    """``folder`` itself when local; for a URL, a cache folder holding fresh copies of those of ``names``
    that exist under it (list files are small: they are downloaded again every time, never stale)."""
    if not is_url(folder):
        return folder
    target = os.path.join(cache_folder(), "remote", hashlib.sha1(folder.encode("utf-8")).hexdigest()[:16])
    os.makedirs(target, exist_ok=True)
    for name in names:
        url = join(folder, name)
        if exists(url, timeout, retries):
            _write_atomically(os.path.join(target, name), read_bytes(url, timeout=timeout, retries=retries))
        elif os.path.exists(os.path.join(target, name)):
            os.remove(os.path.join(target, name))
    return target


def _write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (readers never see half)."""
    handle, partial = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".partial")
    with os.fdopen(handle, "wb") as output:
        output.write(data)
    os.replace(partial, path)


def local_copy(path: str, timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES) -> str:
    """``path`` itself when local; for a URL, a local copy in :func:`cache_folder`, downloaded once (for
    checkpoints, which do not change under their URL) and written atomically, so processes that download the
    same URL at once do not see half a file."""
    if not is_url(path):
        return path
    digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:16]
    target = os.path.join(cache_folder(), "remote", f"{digest}_{os.path.basename(path.rstrip('/'))}")
    if not os.path.isfile(target):
        data = read_bytes(path, timeout=timeout, retries=retries)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        _write_atomically(target, data)
    return target
