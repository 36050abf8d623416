"""Checkpoint loading: every accepted format, head resizing, MAE encoders, position embeddings, bad files,
incomplete and non-finite weights."""
import logging
import os
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hiera_video.models import CheckpointError, create_model, load_checkpoint
from hiera_video.models.checkpoint import (
    IncompleteCheckpointError, NonFiniteWeightsError, read_checkpoint, read_checkpoint_contents,
)
from hiera_video.models.integrity import add_checksum
from hiera_video.utils.errors import UserError

from .oracle import TINY_VIDEO, build_official, relative_error


@pytest.fixture
def trained(official):
    """An official tiny video model with random weights, and the input to compare on."""
    torch.manual_seed(0)
    model = build_official(official, "hiera_base_16x224", **TINY_VIDEO).eval()
    model.head.act_func = lambda x: x
    return model, torch.randn(2, 3, *TINY_VIDEO["input_size"])


def _logits(model, x):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("fmt", ["official", "plain", "safetensors", "toolkit", "ddp"])
def test_every_format_loads_and_gives_the_same_outputs(tmp_path, trained, fmt):
    reference, x = trained
    state = reference.state_dict()
    path = str(tmp_path / ("weights.safetensors" if fmt == "safetensors" else "weights.pth"))
    if fmt == "official":
        torch.save({"model_state": state}, path)
    elif fmt == "plain":
        torch.save(state, path)
    elif fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    elif fmt == "toolkit":
        torch.save({"epoch": 3, "model_state": state, "optimizer_state": {}, "cfg": "MODEL: {}",
                    "class_names": ["a", "b"]}, path)
    else:
        torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, path)
    overrides = {k: v for k, v in TINY_VIDEO.items() if k != "num_classes"}
    model = create_model("hiera_base_16x224", checkpoint=path, **overrides).eval()
    assert model.num_classes == TINY_VIDEO["num_classes"]  # taken from the checkpoint's head
    assert relative_error(_logits(model, x), _logits(reference, x)) < 1e-5


def test_one_read_gives_the_weights_and_what_a_toolkit_checkpoint_stores_beside_them(tmp_path, trained):
    state = trained[0].state_dict()
    path = tmp_path / "checkpoint_epoch_00004.pyth"
    torch.save(add_checksum({"epoch": 3, "model_state": state, "optimizer_state": {"state": {}}, "cfg": "TASK: mae\n",
                             "class_names": ("a", "b")}), path)
    contents = read_checkpoint_contents(path)
    assert contents.state_dict.keys() == state.keys()
    assert contents.metadata["epoch"] == 3 and contents.metadata["optimizer_state"] == {"state": {}}
    assert "model_state" not in contents.metadata
    assert contents.cfg_yaml == "TASK: mae\n" and contents.class_names == ["a", "b"]
    official = tmp_path / "official.pth"
    torch.save({"model_state": state}, official)
    bare = read_checkpoint_contents(official)
    assert bare.metadata == {} and bare.cfg_yaml is None and bare.class_names is None


def test_a_bit_flipped_in_a_toolkit_checkpoint_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint_epoch_00001.pyth"
    weights = torch.arange(64, dtype=torch.float32)
    torch.save(add_checksum({"epoch": 0, "model_state": {"w": weights}}), path)
    data = bytearray(path.read_bytes())
    data[data.find(weights.numpy().tobytes()) + 9] ^= 0x10  # torch.load does not check zip CRCs
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checkpoint_epoch_00001.pyth is corrupted"):
        read_checkpoint_contents(path)


def test_safetensors_without_extension_is_recognized(tmp_path, trained):
    reference, x = trained
    path = str(tmp_path / "model.bin")
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, path)
    model = create_model("hiera_base_16x224", checkpoint=path, **TINY_VIDEO).eval()
    assert relative_error(_logits(model, x), _logits(reference, x)) < 1e-5


def test_head_of_another_size_is_reinitialized_with_a_warning(tmp_path, trained, caplog):
    reference, _ = trained
    path = str(tmp_path / "k400.pth")
    torch.save({"model_state": reference.state_dict()}, path)
    with caplog.at_level(logging.WARNING):
        model = create_model("hiera_base_16x224", checkpoint=path, **{**TINY_VIDEO, "num_classes": 3})
    assert model.head.projection.weight.shape == (3, 128)
    assert "(7, 128)" in caplog.text and "(3, 128)" in caplog.text
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight, reference.blocks[0].attn.qkv.weight)


def test_mae_checkpoint_loads_into_a_classifier_by_taking_the_encoder(tmp_path, official, caplog):
    torch.manual_seed(0)
    mae = create_model("mae_hiera_base_16x224", **TINY_VIDEO)
    path = str(tmp_path / "mae.pth")
    torch.save({"model_state": mae.state_dict()}, path)
    classifier = create_model("hiera_base_16x224", **TINY_VIDEO)
    with caplog.at_level(logging.WARNING):
        result = load_checkpoint(classifier, path)
    assert set(result.missing_keys) == {"norm.weight", "norm.bias", "head.projection.weight",
                                        "head.projection.bias"}
    assert result.unexpected_keys == []
    assert "head.projection.weight" in caplog.text
    for key, value in classifier.state_dict().items():
        if key in mae.state_dict():
            torch.testing.assert_close(value, mae.state_dict()[key])


def test_position_embeddings_are_interpolated_to_a_new_input_size(tmp_path, trained):
    reference, _ = trained
    path = str(tmp_path / "w.pth")
    torch.save({"model_state": reference.state_dict()}, path)
    model = create_model("hiera_base_16x224", checkpoint=path, **{**TINY_VIDEO, "input_size": (8, 128, 96)})
    assert model.pos_embed_temporal.shape == (1, 4, 16)
    assert model.pos_embed_spatial.shape == (1, 32 * 24, 16)
    # the corners of a bicubic resize with align_corners=False stay close to the old corners' region
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 128, 96))
    assert out.shape == (1, 7) and torch.isfinite(out).all()
    same = create_model("hiera_base_16x224", checkpoint=path, **TINY_VIDEO)
    torch.testing.assert_close(same.pos_embed_spatial, reference.pos_embed_spatial)


def test_another_architecture_lists_mismatched_keys(tmp_path, trained):
    reference, _ = trained
    path = str(tmp_path / "w.pth")
    torch.save({"model_state": reference.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.qkv\.weight: checkpoint \(48, 16\) vs model"):
        create_model("hiera_base_16x224", checkpoint=path, **{**TINY_VIDEO, "embed_dim": 32})


def test_missing_truncated_and_foreign_files_name_the_file(tmp_path, trained):
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="nope.pth does not exist"):
        create_model("hiera_base_16x224", checkpoint=missing, **TINY_VIDEO)

    reference, _ = trained
    good = tmp_path / "good.pth"
    torch.save({"model_state": reference.state_dict()}, str(good))
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        create_model("hiera_base_16x224", checkpoint=str(truncated), **TINY_VIDEO)

    garbage = tmp_path / "random.pth"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="random.pth"):
        create_model("hiera_base_16x224", checkpoint=str(garbage), **TINY_VIDEO)

    foreign = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(CheckpointError, match="resnet.pth holds no weights of this model"):
        create_model("hiera_base_16x224", checkpoint=str(foreign), **TINY_VIDEO)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the random "protocol" byte
@pytest.mark.parametrize("head", [b"", b"\x80\x02", b"PK\x03\x04"], ids=["random", "pickle-like", "zip-like"])
def test_any_corrupt_bytes_give_a_checkpoint_error(tmp_path, head):
    # The unpickler fails on corrupt bytes in many ways (IndexError, KeyError, UnicodeDecodeError, ...):
    # every one must come out as the documented CheckpointError naming the file.
    generator = np.random.default_rng(0)
    for trial in range(150):
        path = tmp_path / f"corrupt{trial}.pth"
        path.write_bytes(head + generator.bytes(int(generator.integers(1, 2048))))
        with pytest.raises(CheckpointError, match=f"corrupt{trial}.pth"):
            read_checkpoint(str(path))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model_state": {"x": _RunsCode()}}, handle, protocol=2)  # torch.save's protocol: no note
    with pytest.raises(CheckpointError, match="refusing to load .*evil.pth"):
        create_model("hiera_base_16x224", checkpoint=str(path), **TINY_VIDEO)


def test_checkpoint_errors_are_user_errors_that_old_except_clauses_still_catch():
    for error_class in (CheckpointError, NonFiniteWeightsError, IncompleteCheckpointError):
        assert issubclass(error_class, CheckpointError) and issubclass(error_class, UserError)
        assert issubclass(error_class, RuntimeError)


@pytest.fixture
def tiny_weights(tmp_path):
    """A tiny video classifier (7 classes) and the path of its plain state dict."""
    torch.manual_seed(0)
    model = create_model("hiera_base_16x224", **TINY_VIDEO)
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_complete_loading_refuses_missing_weights_naming_the_file_and_keeps_the_model(tmp_path, tiny_weights):
    source, _ = tiny_weights
    state = source.state_dict()
    dropped = [key for key in state if key.startswith("blocks.1.")]
    path = tmp_path / "partial.pth"
    torch.save({k: v for k, v in state.items() if k not in dropped}, path)
    model = create_model("hiera_base_16x224", **TINY_VIDEO)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(IncompleteCheckpointError) as error:
        load_checkpoint(model, path, complete=True)
    message = str(error.value)
    assert str(path) in message and f"{len(dropped)} model parameters are not in the file" in message
    assert dropped[0] in message and "would be random" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # refused before loading
    assert load_checkpoint(model, path).missing_keys == dropped  # fine-tuning may start from it


def test_complete_loading_refuses_a_head_of_another_size(tiny_weights, caplog):
    _, path = tiny_weights
    model = create_model("hiera_base_16x224", **{**TINY_VIDEO, "num_classes": 3})
    with caplog.at_level(logging.WARNING), pytest.raises(IncompleteCheckpointError) as error:
        load_checkpoint(model, path, complete=True)
    assert str(path) in str(error.value)
    assert "head.projection.weight: checkpoint (7, 128) vs model (3, 128)" in str(error.value)
    assert "re-initialized" not in caplog.text  # no "fine-tuning" warning before the refusal


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("fmt", ["plain", "toolkit", "safetensors"])
def test_non_finite_weights_are_refused_naming_the_file_and_the_first_bad_tensors(tmp_path, tiny_weights, fmt,
                                                                                   bad_value):
    state = {k: v.clone() for k, v in tiny_weights[0].state_dict().items()}
    state["blocks.0.attn.qkv.weight"][3, 2] = bad_value
    state["head.projection.bias"].fill_(bad_value)
    path = tmp_path / ("w.safetensors" if fmt == "safetensors" else "w.pth")
    if fmt == "plain":
        torch.save(state, path)
    elif fmt == "toolkit":  # a valid checksum: the file is intact, its weights are not
        torch.save(add_checksum({"epoch": 0, "model_state": state}), path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(NonFiniteWeightsError) as error:
        read_checkpoint_contents(path)
    message = str(error.value)
    assert f"refusing to load {path}" in message and "2 of its weight tensors hold NaN or infinite" in message
    assert "(blocks.0.attn.qkv.weight, head.projection.bias)" in message


def test_a_run_folder_given_as_checkpoint_names_the_file_to_give(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    for epoch in (2, 10):
        (tmp_path / "checkpoints" / f"checkpoint_epoch_{epoch:05d}.pyth").write_bytes(b"")
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint_contents(tmp_path)
    assert str(caught.value).endswith(
        f"give one of its checkpoints, e.g. {tmp_path / 'checkpoints' / 'checkpoint_epoch_00010.pyth'}.")
