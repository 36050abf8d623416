"""Distributed: when one torchrun worker raises, every worker stops promptly and the error is shown."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("distributed_failure_worker.py")
# Far below gloo's 30-minute collective timeout: a hang would be caught, a slow CI machine would not.
STOP_WITHIN_S = 90


def test_one_failing_rank_stops_the_whole_job_with_its_error(tmp_path):
    fail_rank = 1  # rank 0 failing was checked the same way by hand (it stops as promptly)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(WORKER), str(tmp_path), str(fail_rank), "3"]
    started = time.monotonic()
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        stdout, stderr = job.communicate(timeout=STOP_WITHIN_S + 60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    elapsed = time.monotonic() - started
    output = stdout + stderr
    leftover = processes_running(str(tmp_path))
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert job.returncode != 0
    assert f"rank {fail_rank} failed on purpose at step 3" in output
    assert elapsed < STOP_WITHIN_S, f"the job took {elapsed:.0f} s to stop"
    assert not leftover, f"worker processes still running: {leftover}"


def processes_running(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (torchrun starts each worker in a session
    of its own, so the job's process group does not hold them)."""
    found = subprocess.run(["pgrep", "-f", text], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found if int(pid) != os.getpid()]


def test_processes_running_finds_a_live_worker(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path)],
                               start_new_session=True)
    try:
        assert processes_running(str(tmp_path)) == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert processes_running(str(tmp_path)) == []
