"""Two torchrun agents on this machine acting as two nodes (c10d rendezvous on 127.0.0.1, gloo): when the
worker of one node dies mid-epoch, the other node stops promptly, torchrun shows the failure, and the same
two commands resume from the last checkpoint to the weights of an uninterrupted one-process run."""
import os
import signal
import socket
import subprocess
import sys
import time

from tests.reliability.conftest import REPO, WORKER, final_weights, job_log, run_in_process

STOP_WITHIN_S = 90  # far below gloo's 30-minute collective timeout
NO_DROP_PATH = ("MODEL.DROP_PATH_RATE", "0.0")  # drop path draws differ per rank: keep 2 ranks = 1 process


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(output_dir, node_rank: int, endpoint: str, **hooks: int) -> subprocess.Popen:
    """One torchrun agent (one worker) of a 2-node job running train_worker.py, with kill ``hooks``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **{k: str(v) for k, v in hooks.items()}}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--node_rank", str(node_rank), "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint,
               "--rdzv_id", "two_nodes", str(WORKER), str(output_dir), "SOLVER.MAX_EPOCH", "3", *NO_DROP_PATH]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(nodes: list[subprocess.Popen], timeout: float) -> list[tuple[int, str]]:
    """Wait for every agent; (exit status, output) of each; agents still running after ``timeout`` are killed."""
    results = []
    deadline = time.monotonic() + timeout
    for node in nodes:
        try:
            stdout, stderr = node.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            stdout, stderr = node.communicate()
        results.append((node.returncode, stdout + stderr))
    return results


def test_a_node_dying_mid_epoch_stops_the_other_and_the_job_resumes(tmp_path):
    endpoint = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    # 16 videos, 2 per process per step: 4 steps per epoch; node 1's worker is killed in epoch 2, step 3.
    (status0, output0), (status1, output1) = finish(
        [start_node(tmp_path / "job", 0, endpoint), start_node(tmp_path / "job", 1, endpoint, KILL_AT_STEP=7)],
        STOP_WITHIN_S + 60)
    elapsed = time.monotonic() - started
    assert status1 != 0 and "SIGKILL" in output1, output1[-3000:]
    # Node 0 learns it from gloo (its worker's peer reset the connection) or, when node 1's agent held the
    # rendezvous store, from the store's connection.
    assert status0 != 0 and ("ChildFailedError" in output0 or "RendezvousConnectionError" in output0), (
        output0[-3000:])
    assert elapsed < STOP_WITHIN_S, f"the job took {elapsed:.0f} s to stop"

    endpoint = f"127.0.0.1:{free_port()}"
    for status, output in finish([start_node(tmp_path / "job", 0, endpoint), start_node(tmp_path / "job", 1, endpoint)],
                                 240):
        assert status == 0, output[-3000:]
    assert "Resuming from" in job_log(tmp_path / "job") and "(epoch 2, iteration 1)" in job_log(tmp_path / "job")
    run_in_process(tmp_path / "one", *NO_DROP_PATH)
    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "job")
    different = [key for key in one if not (one[key] - two[key]).abs().max() <= 1e-5]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
