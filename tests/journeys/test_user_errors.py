"""A user's mistake through a command ends in one ``error:`` line and a non-zero exit, never a traceback;
``HIERA_VIDEO_DEBUG=1`` brings the traceback back for whoever debugs."""
import pytest
import torch

from tests.journeys.conftest import DEMO, Command, Job, run_command, run_net_command, run_together


def assert_one_error_line(job: Job, *words: str) -> None:
    """Exit status non-zero, no traceback, one ``error:`` line (the last) that contains ``words``."""
    errors = [line for line in job.stderr.splitlines() if line.startswith("error:")]
    assert job.returncode != 0, "the command succeeded" + job.diagnosis()
    assert "Traceback" not in job.stderr, "a traceback for a user's mistake" + job.diagnosis()
    assert len(errors) == 1 and job.stderr.strip().splitlines()[-1] == errors[0], job.diagnosis()
    for word in words:
        assert word in errors[0], f"the error line does not say {word!r}" + job.diagnosis()


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory, motion_lists) -> dict[str, Job]:
    """Each mistake's command, run side by side once."""
    root = tmp_path_factory.mktemp("mistakes")
    demo = (DEMO.config, *DEMO.opts)
    commands = {
        "missing data": run_net_command("configs/K400/hiera_b.yaml", root / "a", "NUM_GPUS", "0",
                                        "DATA.PATH_TO_DATA_DIR", str(root / "nowhere")),
        "missing checkpoint": run_net_command(demo[0], root / "b", *demo[1:], *motion_lists.opts, "TRAIN.ENABLE",
                                              "False", "TEST.CHECKPOINT_FILE_PATH", str(root / "none.pyth")),
        "nothing to test": run_net_command(demo[0], root / "c", *demo[1:], *motion_lists.opts,
                                           "TRAIN.ENABLE", "False"),
        "diverging loss": run_net_command(demo[0], root / "d", *demo[1:], *motion_lists.opts,
                                          "SOLVER.BASE_LR", "1e30", "SOLVER.WARMUP_EPOCHS", "0.0"),
        "check_dataset without data": Command("check_dataset.py", (
            "--cfg", "configs/K400/hiera_b.yaml", "NUM_GPUS", "0", "DATA.PATH_TO_DATA_DIR", str(root / "nowhere"))),
    }
    if not torch.cuda.is_available():
        commands["no GPU"] = run_net_command("configs/K400/hiera_b.yaml", root / "e")
    return dict(zip(commands, run_together(*commands.values())))


def test_a_missing_dataset_names_the_folder_and_the_key(mistakes):
    assert_one_error_line(mistakes["missing data"], "no train.csv in DATA.PATH_TO_DATA_DIR=", "nowhere")
    assert_one_error_line(mistakes["check_dataset without data"], "no train.csv", "nowhere")


def test_a_missing_or_absent_checkpoint_says_what_to_do(mistakes):
    assert_one_error_line(mistakes["missing checkpoint"], "none.pyth")
    assert_one_error_line(mistakes["nothing to test"], "Nothing to test", "TEST.ALLOW_RANDOM_INIT")


def test_a_diverging_loss_says_which_knobs_to_turn(mistakes):
    assert_one_error_line(mistakes["diverging loss"], "Loss is", "SOLVER.BASE_LR")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the mistake is asking for a GPU on a machine without one")
def test_a_gpu_config_on_a_cpu_machine_says_how_to_run_on_cpu(mistakes):
    assert_one_error_line(mistakes["no GPU"], "CUDA is not available", "NUM_GPUS 0")


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    missing = ("NUM_GPUS", "0", "DATA.PATH_TO_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("HIERA_VIDEO_DEBUG", raising=False)
    flag = run_command(run_net_command("configs/K400/hiera_b.yaml", tmp_path / "flag", "--debug", *missing))
    monkeypatch.setenv("HIERA_VIDEO_DEBUG", "1")
    variable = run_command(run_net_command("configs/K400/hiera_b.yaml", tmp_path / "variable", *missing))
    for job in (flag, variable):
        assert job.returncode != 0 and "Traceback" in job.stderr and "MissingInputError" in job.stderr, job.diagnosis()
