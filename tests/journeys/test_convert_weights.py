"""``python tools/convert_weights.py CKPT --to official|timm|hf --output OUT``: a state dict written as a
timm hub folder (which timm itself loads) and as a transformers file loads back with the same logits; a
foreign file is one ``error:`` line naming it."""
import json

import pytest
import torch
from safetensors.torch import load_file

from hiera_video.models import create_model
from hiera_video.models.checkpoint import read_checkpoint
from hiera_video.models.layouts import HF, TIMM, detect_layout
from tests.journeys.conftest import Command, run_together
from tests.journeys.test_user_errors import assert_one_error_line
from tests.models.oracle import relative_error

TINY_OPTS = ["HIERA.EMBED_DIM", "16", "HIERA.STAGES", "[1, 2, 2, 1]", "DATA.TRAIN_CROP_SIZE", "64",
             "DATA.TEST_CROP_SIZE", "64", "DATA.TRAIN_JITTER_SCALES", "[64, 80]"]
IMAGE = dict(input_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 2, 1), num_classes=5)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A tiny image classifier saved as a plain state dict, and the tool's three runs on it."""
    folder = tmp_path_factory.mktemp("convert")
    torch.manual_seed(0)
    model = create_model("hiera_tiny_224", **IMAGE).eval()
    torch.nn.init.normal_(model.head.projection.weight, std=0.1)  # logits of about 1, not 0.001
    source = folder / "weights.pth"
    torch.save(model.state_dict(), source)
    foreign = folder / "foreign.pth"
    torch.save({"encoder.layer.0.weight": torch.zeros(2)}, foreign)
    jobs = run_together(
        Command("convert_weights.py", (str(source), "--to", "timm", "--output", str(folder / "timm_hub"),
                                       "--model", "hiera_tiny_224", "--opts", *TINY_OPTS)),
        Command("convert_weights.py", (str(source), "--to", "hf", "--output", str(folder / "hf.safetensors"))),
        Command("convert_weights.py", (str(foreign), "--to", "hf", "--output", str(folder / "never.safetensors"))),
    )
    return model, folder, jobs


def test_written_layouts_load_back_with_the_same_logits(converted):
    reference, folder, (timm_job, hf_job, _) = converted
    assert timm_job.returncode == 0, timm_job.diagnosis()
    assert hf_job.returncode == 0, hf_job.diagnosis()
    assert "timm layout" in timm_job.stdout and "HF transformers layout" in hf_job.stdout
    x = torch.randn(2, 3, 64, 64)
    for path, layout in ((folder / "timm_hub", TIMM), (folder / "hf.safetensors", HF)):
        file = path / "model.safetensors" if path.is_dir() else path
        assert detect_layout(load_file(str(file))) == layout
        model = create_model("hiera_tiny_224", checkpoint=str(path),
                             **{k: v for k, v in IMAGE.items() if k != "num_classes"}).eval()
        with torch.no_grad():
            assert torch.allclose(model(x), reference(x), rtol=0, atol=1e-6)
    config = json.loads((folder / "timm_hub" / "config.json").read_text())
    assert config["architecture"] == "hiera_tiny_224" and config["num_classes"] == 5
    assert set(read_checkpoint(folder / "timm_hub")) == set(reference.state_dict())


def test_timm_loads_the_timm_hub_folder(converted):
    timm = pytest.importorskip("timm")
    reference, folder, _ = converted
    model = timm.create_model(f"local-dir:{folder / 'timm_hub'}", pretrained=True).eval()  # config.json's model_args
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(model(x), reference(x)) <= 1e-4  # timm's code: float rounding differs


def test_a_foreign_file_is_one_error_line(converted):
    _, folder, (_, _, foreign_job) = converted
    assert_one_error_line(foreign_job, str(folder / "foreign.pth"), "encoder.layer.0.weight")
