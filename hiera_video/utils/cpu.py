"""What this CPU computes natively, read once from the kernel's flags (Linux ``/proc/cpuinfo``)."""
import functools
from typing import FrozenSet

# Linux flag names: AMX tiles (bf16 matrix multiply) and AVX-512 BF16 dot products
AMX_BF16_FLAG = "amx_bf16"
AVX512_BF16_FLAG = "avx512_bf16"


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> FrozenSet[str]:
    """The flags of the first CPU in ``cpuinfo_path``; empty where the file cannot be read (not Linux)."""
    try:
        with open(cpuinfo_path) as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("flags")), "flags:")
    except OSError:
        return frozenset()
    return frozenset(line.split(":", 1)[1].split())


def cpu_has_amx(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has AMX-BF16 tiles, which oneDNN's bf16 GEMMs and torch's flash attention use."""
    return AMX_BF16_FLAG in cpu_flags(cpuinfo_path)


def cpu_supports_bf16(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes in bf16 natively (AMX-BF16 or AVX512-BF16), so bf16 runs faster than
    float32 there; False without them (bf16 is emulated) or where the flags cannot be read."""
    return bool({AMX_BF16_FLAG, AVX512_BF16_FLAG} & cpu_flags(cpuinfo_path))
