"""Exported classifiers (ONNX in onnxruntime, torch.export) give eager's logits at any batch size."""
import importlib.util

import pytest
import torch

from hiera_video.models import create_model
from hiera_video.models.export import (
    TOLERANCE, Comparison, ExportInputError, compare_with_eager, export_model, load_exported, load_model_for_export,
    read_preprocessing,
)
from hiera_video.utils.errors import MissingInputError

TINY = dict(input_size=(4, 32, 32), embed_dim=16, num_heads=1, stages=(1, 1, 1, 1), num_classes=5)
needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx / onnxruntime not installed (pip install -e '.[export]')")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = create_model("hiera_base_16x224", **TINY).eval()
    # logits of about 1 (not 0.001 as initialized), so a wrong batch or a lost layer would show
    torch.nn.init.normal_(model.head.projection.weight, std=0.1)
    return model


@needs_onnxruntime
def test_onnx_in_onnxruntime_matches_eager_at_batch_1_and_3(model, tmp_path):
    path = str(tmp_path / "model.onnx")
    export_model(model, path, "onnx")
    comparisons = compare_with_eager(model, load_exported(path, "onnx"), batch_sizes=(1, 3))
    assert set(comparisons) == {1, 3}
    assert all(c.max_difference < TOLERANCE and c.max_logit > 0.5 for c in comparisons.values()), comparisons
    assert read_preprocessing(path, "onnx") == {**model.pretrained_cfg, "mean": [0.45] * 3, "std": [0.225] * 3,
                                                "input_size": [3, 4, 32, 32], "crop_size": [32, 32]}


def test_torch_export_program_takes_any_batch_size(model, tmp_path):
    path = str(tmp_path / "model.pt2")
    export_model(model, path, "torch.export")
    program = load_exported(path, "torch.export")
    x = torch.randn(3, 3, *model.input_size)
    with torch.no_grad():
        assert program(x).shape == (3, 5)
        torch.testing.assert_close(program(x[:1]), model(x[:1]))
    assert all(c.max_difference < TOLERANCE for c in compare_with_eager(model, program).values())
    assert read_preprocessing(path, "torch.export")["num_frames"] == 4


def test_a_plain_state_dict_needs_a_valid_model_name(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(create_model("hiera_base_16x224", **TINY).state_dict(), path)
    with pytest.raises(ExportInputError, match="carries no config"):
        load_model_for_export(str(path))
    with pytest.raises(ExportInputError, match="Did you mean hiera_base_16x224"):
        load_model_for_export(str(path), model_name="hiera_bsae_16x224")


def test_the_tolerance_grows_with_logits_above_1():
    assert Comparison(max_difference=9e-5, max_logit=0.2).within_tolerance
    assert not Comparison(max_difference=2e-4, max_logit=0.2).within_tolerance
    assert Comparison(max_difference=2e-4, max_logit=20.0).within_tolerance


def test_a_missing_output_folder_is_a_user_error(model, tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        export_model(model, str(tmp_path / "absent" / "model.pt2"), "torch.export")
