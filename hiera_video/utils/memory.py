"""Keeping freed memory for reuse in long jobs (glibc's malloc, Linux).

By default glibc hands every block of 128 KiB and more back to the kernel when it is freed (``munmap``, or
a trim of the heap's top), so each forward pass maps its large activations anew: the kernel zeroes every
page and the first write to it page-faults. A Hiera-B 16x224 forward allocates hundreds of such blocks
(most of up to 32 MiB). :func:`keep_freed_memory` raises glibc's thresholds once at the start of a job, so
freed blocks stay in the heap and the next pass reuses them: 1.04-1.07x on a CPU forward (ours and timm's
alike) and 1.2x on our bf16 training step, whose attention matmuls allocate 20 MB scores tensors per block
(``benchmarks/README.md``). The price is that a process keeps its peak heap until it exits, as
PyTorch's CUDA caching allocator does on the GPU. Other allocators (jemalloc, tcmalloc through
``LD_PRELOAD``) and the user's own ``MALLOC_*`` settings are left alone.
"""
import ctypes
import ctypes.util
import os

# mallopt(3) parameters and glibc's limits on 64-bit Linux
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MAX_MMAP_THRESHOLD = 32 * 2**20  # blocks above this are always mapped (glibc's cap)
TRIM_THRESHOLD = 2**31 - 1  # free memory kept at the heap's top before trimming (mallopt takes an int)
DEFAULT_THRESHOLD = 128 * 2**10  # glibc's default for both
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def _glibc():
    """glibc as a ctypes library, or None (another C library, or another allocator preloaded)."""
    if any(name in os.environ.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only (not musl, not macOS)
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory(keep: bool = True) -> bool:
    """Let glibc keep freed blocks up to 32 MiB in the heap (``keep``), or go back to its defaults; True
    when the setting was applied, False where it does not apply (not glibc, another allocator preloaded,
    or ``MALLOC_*`` tuning in the environment, which wins)."""
    libc = _glibc()
    if libc is None or any(name in os.environ for name in _USER_SETTINGS):
        return False
    mmap_threshold, trim_threshold = (MAX_MMAP_THRESHOLD, TRIM_THRESHOLD) if keep else (DEFAULT_THRESHOLD,) * 2
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))
