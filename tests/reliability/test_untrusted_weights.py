"""Untrusted weights through the real commands. ``tools/run_net.py`` testing and ``tools/predict.py`` refuse a
checkpoint whose model would be partly random (a classifier head of another size, missing parameters), whose
weights hold NaN, or whose bytes changed on disk: a non-zero exit naming the file, and no metrics.json or
predictions JSON. (TEST.ALLOW_RANDOM_INIT still measures a partly random model on purpose.)"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hiera_video.config import load_config
from hiera_video.engine import get_task, save_checkpoint
from hiera_video.models.integrity import add_checksum
from hiera_video.utils.motion_dataset import CLASS_NAMES, make_motion_dataset
from tests.journeys.conftest import REPO, Command, Job, run_net_command, run_together

DEMO_CONFIG = "configs/demo/hiera_tiny.yaml"
# Testing only, on CPU, one view per video, the data in the main process.
TEST_ONLY = ["NUM_GPUS", "0", "TRAIN.ENABLE", "False", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1",
             "TEST.BATCH_SIZE", "8", "DATA_LOADER.NUM_WORKERS", "0"]
BAD_TENSOR = "blocks.0.attn.qkv.weight"
NUM_MISSING = 37


def save_demo_model(output_dir: Path, *opts: str) -> Path:
    """A toolkit checkpoint of the demo config's model with its class names (untrained: what matters is
    which weights it holds)."""
    cfg = load_config(str(REPO / DEMO_CONFIG), ["OUTPUT_DIR", str(output_dir), *opts])
    torch.manual_seed(0)
    model = get_task(cfg).build_model()
    return save_checkpoint(cfg.OUTPUT_DIR, 0, model, torch.optim.SGD(model.parameters(), lr=0.1), None, cfg.dump(),
                           CLASS_NAMES[:cfg.MODEL.NUM_CLASSES])


def rewrite_weights(source: Path, target: Path, change) -> Path:
    """A copy of a toolkit checkpoint with ``change`` applied to its model state and its checksum recomputed:
    an intact file holding untrusted weights."""
    state = torch.load(source, weights_only=True)
    change(state["model_state"])
    torch.save(add_checksum({k: v for k, v in state.items() if k != "checksum"}), target)
    return target


def drop_parameters(model_state: dict) -> None:
    """Remove NUM_MISSING block parameters."""
    for key in [k for k in model_state if k.startswith("blocks.")][:NUM_MISSING]:
        del model_state[key]


def flip_bytes_in_tensor(source: Path, target: Path) -> Path:
    """A copy of ``source`` with bytes flipped inside BAD_TENSOR's data (torch.load does not notice)."""
    data = bytearray(source.read_bytes())
    tensor = torch.load(source, weights_only=True)["model_state"][BAD_TENSOR]
    start = data.find(tensor.numpy().tobytes())
    assert start > 0
    data[start + 9] ^= 0x10
    data[start + 100] ^= 0x01
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """``other_head`` (5 classes for the config's 8), ``missing`` (NUM_MISSING parameters less), ``nan``
    (BAD_TENSOR all NaN), ``flipped`` (bytes changed inside BAD_TENSOR)."""
    folder = tmp_path_factory.mktemp("untrusted")
    good = save_demo_model(folder / "good")
    return {
        "other_head": save_demo_model(folder / "five_classes", "MODEL.NUM_CLASSES", "5"),
        "missing": rewrite_weights(good, folder / "missing.pyth", drop_parameters),
        "nan": rewrite_weights(good, folder / "nan.pyth", lambda state: state[BAD_TENSOR].fill_(float("nan"))),
        "flipped": flip_bytes_in_tensor(good, folder / "flipped.pyth"),
    }


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, checkpoints) -> dict[str, tuple[Job, Path]]:
    """Every command, run side by side: ``test_<kind>`` (run_net testing the checkpoint; its OUTPUT_DIR),
    ``test_on_purpose`` (the other head with TEST.ALLOW_RANDOM_INIT True) and ``predict_<kind>`` (predict
    --json; its JSON path)."""
    folder = tmp_path_factory.mktemp("commands")
    data = make_motion_dataset(folder / "motion", {"test": 1})
    data_opts = ["DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data)]
    clip = str(data / "videos" / "test" / "right_slow_000.mp4")
    commands: dict[str, tuple[Command, Path]] = {}
    for kind, checkpoint in checkpoints.items():
        output_dir = folder / f"test_{kind}"
        commands[f"test_{kind}"] = (run_net_command(DEMO_CONFIG, output_dir, *TEST_ONLY, *data_opts,
                                                    "TEST.CHECKPOINT_FILE_PATH", str(checkpoint)), output_dir)
        if kind == "other_head":
            continue  # predict builds its head from the checkpoint's
        json_path = folder / f"predict_{kind}.json"
        commands[f"predict_{kind}"] = (Command("predict.py", (clip, "--checkpoint", str(checkpoint), "--device",
                                                              "cpu", "--json", str(json_path))), json_path)
    on_purpose = folder / "test_on_purpose"
    commands["test_on_purpose"] = (run_net_command(DEMO_CONFIG, on_purpose, *TEST_ONLY, *data_opts,
                                                   "TEST.CHECKPOINT_FILE_PATH", str(checkpoints["other_head"]),
                                                   "TEST.ALLOW_RANDOM_INIT", "True"), on_purpose)
    finished = run_together(*(command for command, _ in commands.values()))
    return {name: (job, output) for (name, (_, output)), job in zip(commands.items(), finished)}


REASONS = {
    "other_head": "head.projection.weight: checkpoint (5, 256) vs model (8, 256)",
    "missing": f"{NUM_MISSING} model parameters are not in the file",
    "nan": f"hold NaN or infinite values ({BAD_TENSOR})",
    "flipped": "is corrupted: its content checksum is",
}


@pytest.mark.parametrize("kind", list(REASONS))
def test_testing_refuses_untrusted_weights_naming_the_file_and_writes_no_metrics(jobs, checkpoints, kind):
    job, output_dir = jobs[f"test_{kind}"]
    assert job.returncode != 0, job.diagnosis()
    assert str(checkpoints[kind]) in job.stderr and REASONS[kind] in job.stderr, job.diagnosis()
    assert not (output_dir / "test" / "metrics.json").exists()


def test_random_init_allowed_on_purpose_still_tests_a_partly_random_model(jobs, checkpoints):
    job, output_dir = jobs["test_on_purpose"]
    assert job.returncode == 0, job.diagnosis()
    assert "re-initialized" in job.stderr  # the head, with its warning
    assert job.json_file("test/metrics.json")["num_evaluated"] == 8


@pytest.mark.parametrize("kind", ["missing", "nan", "flipped"])
def test_predict_refuses_untrusted_weights_with_one_error_line_and_writes_no_json(jobs, checkpoints, kind):
    job, json_path = jobs[f"predict_{kind}"]
    assert job.returncode == 2, job.diagnosis()
    error_lines = [line for line in job.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and str(checkpoints[kind]) in error_lines[0], job.diagnosis()
    assert REASONS[kind] in job.stderr and "Traceback" not in job.stderr, job.diagnosis()
    assert not json_path.exists() and job.stdout == ""
