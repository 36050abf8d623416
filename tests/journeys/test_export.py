"""``python tools/export.py --checkpoint <toolkit checkpoint> --format onnx --output FILE``: an ONNX file that
onnxruntime runs with eager's logits, carrying the checkpoint config's preprocessing; a wrong path is one
``error:`` line."""
import importlib.util

import pytest
import torch

from hiera_video.config import load_config
from hiera_video.engine.checkpoint import save_checkpoint
from hiera_video.engine.tasks import get_task
from hiera_video.models.export import load_exported, read_preprocessing
from tests.journeys.conftest import TINY_HIERA, Command, run_together
from tests.journeys.test_user_errors import assert_one_error_line

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx / onnxruntime not installed (pip install -e '.[export]')")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A toolkit checkpoint of the tiny classifier (DATA.MEAN changed), its eager model, and the two jobs."""
    folder = tmp_path_factory.mktemp("export")
    cfg = load_config(None, [*TINY_HIERA, "MODEL.NUM_CLASSES", "5", "DATA.MEAN", "[0.5, 0.4, 0.3]",
                             "OUTPUT_DIR", str(folder)])
    torch.manual_seed(0)
    model = get_task(cfg).build_model().eval()
    torch.nn.init.normal_(model.head.projection.weight, std=0.1)  # logits of about 1, not 0.001
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpoint = str(save_checkpoint(str(folder), 0, model, optimizer, None, cfg.dump(), ["a", "b", "c", "d", "e"]))
    onnx_file = str(folder / "model.onnx")
    good, bad = run_together(
        Command("export.py", ("--checkpoint", checkpoint, "--format", "onnx", "--output", onnx_file)),
        Command("export.py", ("--checkpoint", str(folder / "absent.pyth"), "--format", "onnx",
                              "--output", str(folder / "never.onnx"))),
    )
    return model, onnx_file, good, bad


def test_the_onnx_file_gives_eager_logits_in_onnxruntime(exported):
    model, onnx_file, good, _ = exported
    assert good.returncode == 0, "export.py failed" + good.diagnosis()
    assert "batch 1:" in good.stdout and "batch 3:" in good.stdout, good.diagnosis()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load_exported(onnx_file, "onnx")(x), model(x), rtol=0, atol=1e-4)


def test_the_onnx_file_carries_the_checkpoint_configs_preprocessing(exported):
    _, onnx_file, _, _ = exported
    preprocessing = read_preprocessing(onnx_file, "onnx")
    assert preprocessing["mean"] == [0.5, 0.4, 0.3]
    assert (preprocessing["num_frames"], preprocessing["sampling_rate"], preprocessing["crop_size"],
            preprocessing["short_side"]) == (4, 4, [32, 32], 32)


def test_a_missing_checkpoint_is_one_error_line(exported):
    assert_one_error_line(exported[3], "absent.pyth", "does not exist")
