"""keep_freed_memory: freed blocks are reused without page faults, and the user's allocator settings win."""
import os
import subprocess
import sys

import pytest

from hiera_video.utils import memory

# Allocate, touch and free 16 MiB, then count the page faults of doing it again (Linux: ru_minflt).
REUSE = """
import resource, sys
from hiera_video.utils.memory import keep_freed_memory
applied = keep_freed_memory(sys.argv[1] == "keep")
def touch():
    block = bytearray(16 * 2**20)  # zeroed by calloc: every page written
    block[::4096] = b"x" * len(block[::4096])
    del block
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_reuse(setting: str, **env: str) -> tuple[str, int]:
    result = subprocess.run([sys.executable, "-c", REUSE, setting], capture_output=True, text=True, check=True,
                            env={**os.environ, **env})
    applied, faults = result.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(memory._glibc() is None, reason="glibc's malloc only (Linux)")
def test_kept_memory_is_reused_without_page_faults():
    applied, kept_faults = page_faults_of_reuse("keep")
    assert applied == "True"
    defaults_applied, default_faults = page_faults_of_reuse("defaults")
    assert defaults_applied == "True"
    assert default_faults >= 2048 > 256 > kept_faults  # 16 MiB is 4096 pages of 4 KiB


@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "1000000"}, {"LD_PRELOAD": "libjemalloc.so.2"}],
                         ids=["user's MALLOC_ setting", "another allocator"])
def test_the_users_allocator_settings_win(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert memory.keep_freed_memory() is False
