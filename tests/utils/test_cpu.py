"""CPU features are read from the kernel's flags: native bf16 and AMX tiles."""
import pytest

from hiera_video.utils import cpu


def write_cpuinfo(tmp_path, flags):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    return str(cpuinfo)


@pytest.mark.parametrize("flags, bf16, amx", [("fpu avx512f avx512_bf16 amx_tile", True, False),
                                              ("fpu avx512_bf16 amx_bf16 amx_tile", True, True),
                                              ("fpu amx_bf16", True, True),
                                              ("fpu avx2 avx512f avx512bw", False, False)])
def test_native_bf16_and_amx_are_read_from_the_flags(tmp_path, flags, bf16, amx):
    path = write_cpuinfo(tmp_path, flags)
    assert cpu.cpu_supports_bf16(path) is bf16
    assert cpu.cpu_has_amx(path) is amx


def test_unreadable_flags_mean_no_native_bf16(tmp_path):
    missing = str(tmp_path / "missing")
    assert cpu.cpu_flags(missing) == frozenset()
    assert cpu.cpu_supports_bf16(missing) is False and cpu.cpu_has_amx(missing) is False
