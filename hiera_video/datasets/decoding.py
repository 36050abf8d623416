"""Video decoding behind one interface, for PyAV (default), decord and torchcodec.

Usage::

    with open_video("clip.mp4", backend="pyav") as video:
        video.num_frames, video.fps, video.duration    # frames, frames per second, seconds
        frames = video.get_frames([0, 4, 8])           # uint8 [T, H, W, C], RGB
        small = video.get_frames([0, 4], short_side=224)  # scaled down while decoding

Every failure (missing, empty, truncated or corrupt file, no video stream, zero frames, unsupported codec,
decode timeout) raises :class:`VideoDecodeError` whose message starts with the file path.

How the PyAV reader copes with real files:

- Frame count, frame times and fps come from the packet index (demuxing without decoding, which is cheap),
  not from container metadata, so a missing or wrong duration or frame count does not matter.
- Frame ``i`` is the ``i``-th frame in presentation order. ``fps`` is the stream's average rate.
  For variable-frame-rate files ``is_constant_frame_rate`` is False and :meth:`VideoReader.indices_at_times`
  maps times to the frame shown at that time; the datasets sample in time for such files.
- Rotation metadata (display matrix) is applied, so frames come out the way players show them.
- Any pixel format (yuv444, 10-bit, ...) and any codec FFmpeg decodes (H.264, VP9, AV1, ...) converts to RGB.
- Frames are decoded once per call: seek to the keyframe before the first needed frame, decode forward,
  keep the needed ones; a new seek only when the next needed frame lies past a later keyframe.

decord and torchcodec are optional; they index frames their own way and do not apply rotation. On
constant-frame-rate H.264 all backends return the same frames (tested).

Watchdog: a decoder can hang (a stalled network mount, a FIFO, a pathological file). Threads cannot be
killed, so ``open_video(path, timeout=seconds)`` runs the reader in a helper subprocess
(:class:`DecodeServer`, one per process and thread, also inside DataLoader workers, which may not fork
children with ``multiprocessing``) and kills it when a request exceeds the timeout; the video then fails
with ``VideoDecodeError(path, "timed out ...")`` and the next video starts a fresh helper. The helper
imports NumPy and PyAV only (about 25 MB of private memory, not torch's 300 MB); frames come back as
arrays through a pipe.

A helper ended by a termination signal (SIGTERM, SIGINT, SIGHUP) was not ended by its video: clusters
preempt a job by signalling its whole process group (or every process of it), helpers included, while the
job itself finishes its step. The request then goes to a fresh helper once more (the video reopened), and
a helper that a termination signal ends during its start-up is started once more, so a preemption never
counts a good video as failed. A helper that crashes or is killed (SIGSEGV, SIGKILL, ...) fails its video.
"""
from __future__ import annotations

import atexit
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from bisect import bisect_right
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

BACKENDS = ("pyav", "decord", "torchcodec")
# A seek flushes the decoder, which costs about as much as decoding a dozen frames: a 16 x 4 training clip
# of a file with a keyframe every 30 frames crosses two keyframes, and seeking at each of them made reading
# it 9% slower than decoding straight through (benchmarks/decode_floor.py's file, 1 thread).
MIN_FRAMES_A_SEEK_SKIPS = 12


def error_reason(error: BaseException) -> str:
    """The reason of a decoder's error in words: FFmpeg's message without its errno number and the path
    (``[Errno 1094995529] Invalid data found when processing input: 'x.mp4'`` -> ``invalid data found when
    processing input``); other errors as they print."""
    reason = getattr(error, "strerror", None)
    return reason[0].lower() + reason[1:] if isinstance(reason, str) and reason else str(error)


class VideoDecodeError(RuntimeError):
    """A video could not be opened or decoded; ``str(error)`` names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):
        return (VideoDecodeError, (self.path, self.reason))


class VideoReader(ABC):
    """An open video: ``num_frames``, ``fps``, ``duration`` and ``get_frames(indices)``.

    Subclasses set ``path``, ``num_frames``, ``fps``, ``frame_times`` (seconds from the first frame, one per
    frame, presentation order) and implement :meth:`_read_frames`.
    """

    path: str
    num_frames: int
    fps: float
    frame_times: np.ndarray
    codec: str = ""
    width: int = 0
    height: int = 0

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end (the last frame lasts as long as the
        one before it)."""
        if self.num_frames == 0:
            return 0.0
        last_step = self.frame_times[-1] - self.frame_times[-2] if self.num_frames > 1 else 1.0 / self.fps
        return float(self.frame_times[-1] + last_step)

    @property
    def is_constant_frame_rate(self) -> bool:
        """True when consecutive frames are evenly spaced.

        Tolerance: 1 % of a frame or 1.5 ms, whichever is larger (WebM stores times in milliseconds, so a
        30 fps WebM alternates 33 and 34 ms steps and is still constant-rate).
        """
        if self.num_frames < 3:
            return True
        steps = np.diff(self.frame_times)
        return bool(np.abs(steps - 1.0 / self.fps).max() <= max(0.01 / self.fps, 0.0015))

    def indices_at_times(self, times: Sequence[float]) -> list[int]:
        """Index of the frame on screen at each time (seconds from the first frame)."""
        return [max(bisect_right(self.frame_times, t + 1e-6) - 1, 0) for t in times]

    def metadata(self) -> dict:
        """Probe result: frames, fps, duration, codec, size, constant frame rate (for manifests)."""
        return {
            "num_frames": self.num_frames,
            "fps": self.fps,
            "duration": self.duration,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "constant_frame_rate": self.is_constant_frame_rate,
        }

    def get_frames(self, indices: Sequence[int], short_side: Optional[int] = None) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``[T, H, W, C]`` RGB.

        With ``short_side``, frames whose shorter side is longer are scaled down to it (aspect kept, the
        long side computed as torchvision's ``resize`` does), during decoding with PyAV (so HD video never
        sits in memory at full size) and right after it with the other backends.
        """
        import torch

        return torch.from_numpy(self.get_frames_array(indices, short_side))

    def get_frames_array(self, indices: Sequence[int], short_side: Optional[int] = None) -> np.ndarray:
        """:meth:`get_frames` as a NumPy array (the decode helper process runs without torch)."""
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError(f"{self.path}: get_frames needs at least one index")
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(f"{self.path}: frame indices {bad[:5]} outside [0, {self.num_frames})")
        unique = sorted(set(indices))
        decoded = self._read_frames(unique, short_side)  # [len(unique), H, W, C]
        position = {index: row for row, index in enumerate(unique)}
        return decoded[[position[i] for i in indices]]

    @abstractmethod
    def _read_frames(self, sorted_unique_indices: list[int], short_side: Optional[int]) -> np.ndarray:
        """Decode the frames at sorted, unique indices: uint8 ``[len(indices), H, W, C]``."""

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scaled_size(height: int, width: int, short_side: Optional[int]) -> tuple[int, int]:
    """(height, width) with the shorter side scaled down to ``short_side`` (unchanged if already shorter)."""
    if short_side is None or min(height, width) <= short_side:
        return height, width
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def downscale(frames: np.ndarray, short_side: Optional[int]) -> np.ndarray:
    """uint8 ``[T, H, W, C]`` scaled down to ``short_side`` (area averaging, like PyAV's ``AREA``); unchanged
    if already smaller."""
    height, width = scaled_size(frames.shape[1], frames.shape[2], short_side)
    if (height, width) == tuple(frames.shape[1:3]):
        return frames
    import torch

    channels_first = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # [T, H, W, C] -> [T, C, H, W]
    resized = torch.nn.functional.interpolate(channels_first, size=(height, width), mode="area")
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # -> [T, h, w, C]


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoDecodeError(path, "file not found (check DATA.PATH_PREFIX and the list file)")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes); re-download it")


class PyAVReader(VideoReader):
    """PyAV (FFmpeg) reader; see the module docstring for how it handles messy files."""

    def __init__(self, path: str, threads: int = 0):
        self.path = str(path)
        _check_file(self.path)
        self._threads = threads
        self._open_container()
        try:
            self._init_stream()
        except BaseException:
            self._container.close()
            raise

    def _open_container(self) -> None:
        import av

        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise VideoDecodeError(self.path, f"cannot open ({error_reason(error)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(self.path, "no video stream (audio-only or not a video file)")
        self._stream = self._container.streams.video[0]
        if self._threads != 1:
            self._stream.thread_type = "AUTO"
            self._stream.thread_count = self._threads

    def _rewind(self, target_pts: Optional[int]) -> None:
        """Seek to the keyframe at or before ``target_pts``; reopen the file (start over) when that fails
        or when ``target_pts`` is None (streams without timestamps, e.g. raw H.264)."""
        import av

        if target_pts is not None:
            try:
                self._container.seek(target_pts, stream=self._stream, backward=True, any_frame=False)
                return
            except av.FFmpegError:
                pass
        self._container.close()
        self._open_container()

    def _init_stream(self) -> None:
        stream = self._stream
        self.codec = stream.codec_context.name
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self._index_packets()
        if self.num_frames == 0:
            raise VideoDecodeError(self.path, "video stream has no frames")
        if self._has_timestamps:
            self.frame_times = np.asarray([float((pts - self._pts[0]) * stream.time_base) for pts in self._pts])
        self.fps = self._average_fps()
        if not self._has_timestamps:
            self.frame_times = np.arange(self.num_frames) / self.fps

    def _index_packets(self) -> None:
        """Read every packet header (no decoding): presentation timestamps and keyframes.

        Packets an edit list marks as discarded (MP4 cut without re-encoding) are never shown: skipped."""
        import av

        pts, keyframe_pts, self.truncated = [], [], False
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframe_pts.append(packet.pts)
        except av.FFmpegError:
            # A truncated or damaged tail: keep the packets before it, minus the last (likely partial) one.
            self.truncated = True
            pts = pts[:-1]
        self._has_timestamps = all(p is not None for p in pts)
        if self._has_timestamps:
            pts = sorted(pts)
        else:
            pts = list(range(len(pts)))
        self._pts = pts
        self.num_frames = len(pts)
        keyframes = sorted(p for p in keyframe_pts if p is not None) if self._has_timestamps else [0]
        self._keyframe_pts = keyframes or [pts[0] if pts else 0]

    def _average_fps(self) -> float:
        # Without timestamps (raw H.264) the average rate is FFmpeg's 25 fps default; the codec's rate
        # (guessed_rate) is then the better guess.
        if self._has_timestamps:
            rate = self._stream.average_rate or self._stream.guessed_rate
        else:
            rate = self._stream.guessed_rate or self._stream.average_rate
        if rate and float(rate) > 0:
            return float(rate)
        if self.num_frames > 1 and self._has_timestamps and self.frame_times[-1] > 0:
            return (self.num_frames - 1) / float(self.frame_times[-1])
        raise VideoDecodeError(self.path, "frame rate unknown (no rate in the stream, no timestamps)")

    def _read_frames(self, sorted_unique_indices: list[int], short_side: Optional[int]) -> np.ndarray:
        import av

        wanted = {self._pts[i]: i for i in sorted_unique_indices}
        frames: dict[int, np.ndarray] = {}
        try:
            if self._has_timestamps:
                for group in self._seek_groups(sorted_unique_indices):
                    self._decode_group(group, wanted, frames, short_side)
            missing = set(sorted_unique_indices) - set(frames)
            if missing:
                # No timestamps, or decoded frames whose timestamps differ from their packets': count frames.
                self._decode_from_start(missing, frames, short_side)
        except av.FFmpegError as error:
            raise VideoDecodeError(self.path, f"decoding failed ({error_reason(error)})") from None
        missing = [i for i in sorted_unique_indices if i not in frames]
        if missing and frames and missing[0] > max(frames):
            self._stand_in_for_missing_tail(missing, frames)
        elif missing:
            raise VideoDecodeError(
                self.path, f"frames {missing[:5]} of {self.num_frames} could not be decoded (truncated or corrupt)"
            )
        return np.stack([frames[i] for i in sorted_unique_indices])

    def _stand_in_for_missing_tail(self, missing: list[int], frames: dict[int, np.ndarray]) -> None:
        """The file ends before its index says (a download cut short): the last decoded frame stands in for
        the ``missing`` frames after it, in training and testing alike, with a warning naming the file."""
        last = max(frames)
        logger.warning("%s: frames %s of the %d its index lists do not decode (the file ends early); frame %d "
                       "stands in for them.", self.path, missing[:5], self.num_frames, last)
        for index in missing:
            frames[index] = frames[last]

    def _seek_groups(self, sorted_indices: list[int]) -> list[list[int]]:
        """Split needed frames into runs decoded after one seek: a new run starts at a later keyframe when
        seeking there skips at least MIN_FRAMES_A_SEEK_SKIPS frames (else decoding on is cheaper)."""
        groups = [[sorted_indices[0]]]
        for index in sorted_indices[1:]:
            keyframe_pts = self._keyframe_pts[bisect_right(self._keyframe_pts, self._pts[index]) - 1]
            skipped = bisect_right(self._pts, keyframe_pts) - 1 - groups[-1][-1]  # frames a seek saves decoding
            if skipped >= MIN_FRAMES_A_SEEK_SKIPS:
                groups.append([index])
            else:
                groups[-1].append(index)
        return groups

    def _decode_group(self, group: list[int], wanted: dict, frames: dict, short_side: Optional[int]) -> None:
        first_pts, last_pts = self._pts[group[0]], self._pts[group[-1]]
        for from_start in (False, True):
            self._rewind(self._pts[0] if from_start else first_pts)
            overshot = False
            for frame in self._container.decode(self._stream):
                pts = frame.pts
                if pts is None:
                    continue
                if pts > first_pts and group[0] not in frames and not from_start:
                    overshot = True  # the seek landed after the first needed frame: retry from the start
                    break
                if pts in wanted and wanted[pts] not in frames:
                    frames[wanted[pts]] = self._to_rgb(frame, short_side)
                if pts >= last_pts:
                    break
            if not overshot:
                return

    def _decode_from_start(self, needed: set[int], frames: dict, short_side: Optional[int]) -> None:
        """For streams without timestamps: count frames in decode order from the start."""
        self._rewind(None)
        for position, frame in enumerate(self._container.decode(self._stream)):
            if position in needed:
                frames[position] = self._to_rgb(frame, short_side)
            if position >= max(needed):
                break

    @staticmethod
    def _to_rgb(frame, short_side: Optional[int]) -> np.ndarray:
        height, width = scaled_size(frame.height, frame.width, short_side)
        if (height, width) == (frame.height, frame.width):
            rgb = frame.to_ndarray(format="rgb24")  # [H, W, 3]
        else:
            rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
        quarter_turns = round((frame.rotation or 0) / 90) % 4
        if quarter_turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=quarter_turns))  # counter-clockwise, as players show
        return rgb

    def close(self) -> None:
        """Close the container."""
        self._container.close()


class DecordReader(VideoReader):
    """decord reader (optional extra ``pip install decord``); does not apply rotation."""

    def __init__(self, path: str, threads: int = 0):
        problem = backend_problem("decord")
        if problem:
            raise ImportError(f"DATA.DECODING_BACKEND='decord': {problem}")
        import decord

        self.path = str(path)
        _check_file(self.path)
        try:
            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=threads)
        except (decord.DECORDError, RuntimeError) as error:
            raise VideoDecodeError(self.path, f"cannot open ({error_reason(error)})") from None
        self.num_frames = len(self._reader)
        if self.num_frames == 0:
            raise VideoDecodeError(self.path, "video stream has no frames")
        self.fps = float(self._reader.get_avg_fps())
        self.frame_times = np.asarray(self._reader.get_frame_timestamp(range(self.num_frames))[:, 0])
        self.frame_times = self.frame_times - self.frame_times[0]
        first = self._reader[0].shape
        self.height, self.width = int(first[0]), int(first[1])
        self.codec = "unknown (decord)"

    def _read_frames(self, sorted_unique_indices: list[int], short_side: Optional[int]) -> np.ndarray:
        import decord

        try:
            batch = self._reader.get_batch(sorted_unique_indices).asnumpy()  # [T, H, W, C]
        except (decord.DECORDError, RuntimeError) as error:
            raise VideoDecodeError(self.path, f"decoding failed ({error_reason(error)})") from None
        return downscale(batch, short_side)


class TorchCodecReader(VideoReader):
    """torchcodec reader, used when ``torchcodec`` is installed; does not apply rotation."""

    def __init__(self, path: str, threads: int = 0):
        problem = backend_problem("torchcodec")
        if problem:
            raise ImportError(f"DATA.DECODING_BACKEND='torchcodec': {problem}")
        from torchcodec.decoders import VideoDecoder

        self.path = str(path)
        _check_file(self.path)
        try:
            self._decoder = VideoDecoder(self.path, seek_mode="exact", num_ffmpeg_threads=threads)
        except (RuntimeError, ValueError) as error:
            raise VideoDecodeError(self.path, f"cannot open ({error_reason(error)})") from None
        meta = self._decoder.metadata
        self.num_frames = int(meta.num_frames or 0)
        if self.num_frames == 0:
            raise VideoDecodeError(self.path, "video stream has no frames")
        self.fps = float(meta.average_fps)
        self.frame_times = np.arange(self.num_frames) / self.fps
        self.codec, self.width, self.height = str(meta.codec), int(meta.width), int(meta.height)

    def _read_frames(self, sorted_unique_indices: list[int], short_side: Optional[int]) -> np.ndarray:
        try:
            batch = self._decoder.get_frames_at(indices=sorted_unique_indices).data  # [T, C, H, W]
        except (RuntimeError, ValueError) as error:
            raise VideoDecodeError(self.path, f"decoding failed ({error_reason(error)})") from None
        return downscale(batch.permute(0, 2, 3, 1).numpy(), short_side)  # [T, C, H, W] -> [T, H, W, C]


class FrameListReader(VideoReader):
    """A video stored as image files (PySlowFast frame lists): frame ``i`` is ``frame_paths[i]``.

    Images are read as RGB (Pillow), whatever tool extracted them; ``fps`` is the rate the frames were
    extracted at (only used for time-based sampling).
    """

    def __init__(self, path: str, frame_paths: Sequence[str], fps: float = 30.0):
        self.path, self.frame_paths = str(path), list(frame_paths)
        self.num_frames, self.fps = len(self.frame_paths), float(fps)
        if self.num_frames == 0:
            raise VideoDecodeError(self.path, "no frames listed")
        self.frame_times = np.arange(self.num_frames) / self.fps
        self.codec = "images"

    def _read_frames(self, sorted_unique_indices: list[int], short_side: Optional[int]) -> np.ndarray:
        from PIL import Image

        frames = []
        for index in sorted_unique_indices:
            frame_path = self.frame_paths[index]
            try:
                with Image.open(frame_path) as image:
                    frames.append(np.asarray(image.convert("RGB")))  # [H, W, C]
            except OSError as error:
                raise VideoDecodeError(self.path, f"frame {frame_path}: {error}") from None
        if len({frame.shape for frame in frames}) > 1:
            raise VideoDecodeError(self.path, "frames have different sizes")
        return downscale(np.stack(frames), short_side)


_READERS = {"pyav": PyAVReader, "decord": DecordReader, "torchcodec": TorchCodecReader}


_OPTIONAL_BACKEND_MODULES = {"decord": "decord", "torchcodec": "torchcodec.decoders"}
_INSTALL_HINTS = {
    "decord": "pip install decord",
    "torchcodec": "pip install torchcodec; it also needs FFmpeg's shared libraries (4 to 7), e.g. "
                  "apt-get install libavcodec-dev libavformat-dev libswscale-dev",
}


def backend_problem(backend: str) -> Optional[str]:
    """Why ``backend`` cannot decode here (with what to install), or None when it can."""
    module = _OPTIONAL_BACKEND_MODULES.get(backend)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"{backend} is not installed ({_INSTALL_HINTS[backend]})"
    except Exception as error:  # a broken optional install must not break the default backend
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"{backend} is installed but does not load ({reason}); {_INSTALL_HINTS[backend]}"
    return None


def available_backends() -> list[str]:
    """Backends whose library imports and loads here."""
    return [name for name in BACKENDS if backend_problem(name) is None]


def open_video(
    path: str | os.PathLike, backend: str = "pyav", timeout: Optional[float] = None, threads: int = 0
) -> VideoReader:
    """Open ``path`` with ``backend`` ("pyav", "decord", "torchcodec") and return a :class:`VideoReader`.

    With ``timeout`` (seconds, > 0) the reader runs in a watchdog subprocess and every request (open,
    ``get_frames``) that takes longer fails with :class:`VideoDecodeError`. ``threads`` is the decoder's
    thread count (0: FFmpeg's choice).
    """
    if backend not in _READERS:
        raise ValueError(f"unknown decoding backend {backend!r}; DATA.DECODING_BACKEND must be one of {BACKENDS}")
    path = os.fspath(path)
    if timeout:
        return WatchdogReader(path, backend, timeout, threads)
    return _READERS[backend](path, threads=threads)


def probe_video(path: str | os.PathLike, backend: str = "pyav", timeout: Optional[float] = None) -> dict:
    """Open ``path`` and return its :meth:`VideoReader.metadata`; raises :class:`VideoDecodeError`."""
    with open_video(path, backend, timeout=timeout) as video:
        return video.metadata()


# ----------------------------------------------------------------------------------------------------------
# Watchdog: the reader runs in a helper subprocess that is killed when a request takes too long.
# ----------------------------------------------------------------------------------------------------------
def _send(stream, message) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(payload)))
    stream.write(payload)
    stream.flush()


def _receive_exact(stream, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("decode helper closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _receive(stream):
    (size,) = struct.unpack("<Q", _receive_exact(stream, 8))
    return pickle.loads(_receive_exact(stream, size))


# Signals by which someone stops a process (a scheduler preempting the job, Ctrl-C, a closed terminal):
# a helper they end was not ended by what it decoded.
TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class HelperTerminated(VideoDecodeError):
    """The decode helper was ended by a termination signal while it served ``path``: not the video's fault."""


class DecodeServer:
    """A helper subprocess that opens videos and decodes frames on request (see the module docstring).

    One per thread of each process (:meth:`for_current_thread`); restarted after a timeout or crash. Requests:
    ``("open", path, backend, threads)`` -> metadata dict, ``("frames", indices, short_side)`` -> uint8 array,
    ``("close",)``. Errors come back as ``("error", VideoDecodeError)``.
    """

    START_TIMEOUT = 300.0
    _instances: dict = {}  # (process id, thread id) -> DecodeServer

    def __init__(self):
        started = self._start()
        if not started and self.termination_signal() is not None:
            started = self._start()  # the signal was for the job, and it came before this helper existed
        if not started:
            raise RuntimeError(f"the decode helper process was not ready within {self.START_TIMEOUT:g} s "
                               f"(exit status {self._process.returncode})")

    def _start(self) -> bool:
        """Start the helper process and wait for its "ready"; False (and the process stopped) without it."""
        env = dict(os.environ, OMP_NUM_THREADS="1")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hiera_video.datasets.decode_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._output_fd = self._process.stdout.fileno()
        # Start-up (importing NumPy and PyAV) is not a video's fault: it gets its own, generous limit.
        ready, _, _ = select.select([self._output_fd], [], [], self.START_TIMEOUT)
        try:
            if ready and _receive(self._process.stdout) == ("ready", None):
                return True
        except EOFError:  # it exited during start-up
            pass
        self.stop()
        return False

    @classmethod
    def for_current_thread(cls) -> "DecodeServer":
        """The running helper of this thread of this process (a DataLoader worker or a probing thread
        gets its own; a forked child never reuses its parent's)."""
        key = (os.getpid(), threading.get_ident())
        server = cls._instances.get(key)
        if server is None or not server.alive():
            server = cls._instances[key] = cls()
            atexit.register(server.stop)
        return server

    def alive(self) -> bool:
        """Whether the helper process is still running."""
        return self._process.poll() is None

    def termination_signal(self) -> Optional[signal.Signals]:
        """The termination signal (:data:`TERMINATION_SIGNALS`) that ended the helper; None while it runs or
        when it ended otherwise."""
        status = self._process.poll()
        if status is None or -status not in TERMINATION_SIGNALS:
            return None
        return signal.Signals(-status)

    def request(self, message, timeout: float, path: str):
        """Send ``message`` and wait at most ``timeout`` seconds for the answer. A helper that a termination
        signal ended raises :class:`HelperTerminated`."""
        try:
            _send(self._process.stdin, message)
            ready, _, _ = select.select([self._output_fd], [], [], timeout)
            if not ready:
                self.stop()
                raise VideoDecodeError(path, f"timed out after {timeout:g} s (DATA.DECODE_TIMEOUT); decoder killed")
            status, value = _receive(self._process.stdout)
        except (BrokenPipeError, EOFError, OSError) as error:
            self.stop()  # it closed its pipes: it has ended (its exit status is that of its first fatal signal)
            terminated_by = self.termination_signal()
            if terminated_by is not None:
                raise HelperTerminated(path, f"decode helper process ended by {terminated_by.name}") from None
            raise VideoDecodeError(path, f"decode helper process died ({error})") from None
        if status == "error":
            raise value
        return value

    def stop(self) -> None:
        """Kill the helper (it may be stuck in a system call, so no polite shutdown)."""
        if self.alive():
            self._process.kill()
        self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class WatchdogReader(VideoReader):
    """A :class:`VideoReader` whose work runs in the :class:`DecodeServer` under a timeout."""

    def __init__(self, path: str, backend: str, timeout: float, threads: int = 0):
        self.path, self.timeout = path, float(timeout)
        # The helper process outlives working-directory changes of this one: it gets an absolute path.
        self._open_request = ("open", os.path.abspath(path), backend, threads)
        self._server = DecodeServer.for_current_thread()
        meta = self._request(self._open_request)
        for key, value in meta.items():
            setattr(self, key, value)

    def _request(self, message):
        """Ask this thread's helper; when a termination signal ended it (the job is being stopped, the
        video did nothing), ask a fresh helper once more, reopening the video there first. Errors name the
        video as it was given (the helper saw its absolute path)."""
        try:
            try:
                return self._server.request(message, self.timeout, self.path)
            except HelperTerminated:
                self._server = DecodeServer.for_current_thread()
                if message[0] != "open":
                    self._server.request(self._open_request, self.timeout, self.path)
                return self._server.request(message, self.timeout, self.path)
        except VideoDecodeError as error:
            if error.path == self._open_request[1] != self.path:
                raise VideoDecodeError(self.path, error.reason) from None
            raise

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        return self._duration

    @duration.setter
    def duration(self, value: float) -> None:
        self._duration = value

    def _read_frames(self, sorted_unique_indices: list[int], short_side: Optional[int]) -> np.ndarray:
        return self._request(("frames", sorted_unique_indices, short_side))

    def close(self) -> None:
        """Close the file in the helper (a dead helper has nothing left open)."""
        if self._server.alive():
            try:
                self._server.request(("close",), self.timeout, self.path)
            except VideoDecodeError:
                pass


def _serve(commands, answers) -> None:
    """Helper-process loop: answer requests from the parent until it closes the pipe."""
    reader: Optional[VideoReader] = None
    while True:
        try:
            message = _receive(commands)
        except EOFError:
            return
        try:
            if message[0] == "open":
                if reader is not None:
                    reader.close()
                _, path, backend, threads = message
                reader = None
                reader = _READERS[backend](path, threads=threads)
                answer = dict(reader.metadata(), frame_times=reader.frame_times)
                answer.pop("constant_frame_rate")
            elif message[0] == "frames":
                answer = reader.get_frames_array(message[1], message[2])
            else:
                if reader is not None:
                    reader.close()
                reader, answer = None, None
            _send(answers, ("ok", answer))
        except VideoDecodeError as error:
            _send(answers, ("error", error))
        except Exception as error:  # reported to the parent, which fails this video only
            path = message[1] if message[0] == "open" else getattr(reader, "path", "?")
            _send(answers, ("error", VideoDecodeError(str(path), f"{type(error).__name__}: {error}")))


def serve_stdio() -> None:
    """Entry point of the helper: the protocol owns the original stdout; stray prints go to stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    import av  # noqa: F401  (imported before "ready" so the first request's timeout is all decoding)

    _send(answers, ("ready", None))
    _serve(sys.stdin.buffer, answers)
