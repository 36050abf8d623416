"""Weight layouts: timm and HF transformers weights (files and hub folders) load with the official model's
outputs, timm's own Hiera agrees with ours, the writers round-trip, and bad files are named errors."""
import json
import logging

import pytest
import torch
from safetensors.torch import save_file

from hiera_video.models import CheckpointError, create_model, load_checkpoint
from hiera_video.models.checkpoint import IncompleteCheckpointError, read_checkpoint
from hiera_video.models.layouts import (
    HF, OFFICIAL, TIMM, LayoutError, convert_layout, detect_layout, hf_to_official, hub_config, official_depths,
    official_to_hf, official_to_timm, timm_to_official, write_hub_folder,
)

from .oracle import TINY_IMAGE, TINY_VIDEO, relative_error

IMAGE, VIDEO = "hiera_tiny_224", "hiera_base_16x224"
ARCH = {IMAGE: TINY_IMAGE, VIDEO: TINY_VIDEO}
TOLERANCE = 1e-4


def _without_classes(name):
    return {k: v for k, v in ARCH[name].items() if k != "num_classes"}


def _randomized(name, mae=False):
    """A tiny model of ``name`` in eval mode whose weights are all random (the head's too, not ~0)."""
    torch.manual_seed(0)
    model = create_model(("mae_" if mae else "") + name,
                         **(_without_classes(name) if mae else ARCH[name])).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


def _clips(name):
    torch.manual_seed(1)
    return torch.randn(2, 3, *ARCH[name]["input_size"])


def _out(model, x, features=False):
    with torch.no_grad():
        return model.forward_features(x) if features else model(x)


def _save(state_dict, folder, form):
    """``state_dict`` written as ``form``: a safetensors or .pth file, or a hub folder (config.json and
    model.safetensors / pytorch_model.bin); returns the path to give the loader."""
    tensors = {k: v.contiguous() for k, v in state_dict.items()}
    if form == "safetensors":
        save_file(tensors, str(folder / "weights.safetensors"))
        return str(folder / "weights.safetensors")
    if form == "pth":
        torch.save(tensors, folder / "weights.pth")
        return str(folder / "weights.pth")
    (folder / "config.json").write_text(json.dumps({"note": "any hub config"}))
    if form == "hub":
        save_file(tensors, str(folder / "model.safetensors"))
    else:
        torch.save(tensors, folder / "pytorch_model.bin")
    return str(folder)


def _hf_bare(state_dict):
    """What ``HieraModel`` holds: no head, no ``hiera.`` prefix."""
    return official_to_hf({k: v for k, v in state_dict.items() if not k.startswith("head.")})


CASES = {  # layout -> (model, writer)
    "timm": (IMAGE, official_to_timm),
    "timm-video": (VIDEO, official_to_timm),
    "hf": (IMAGE, official_to_hf),
}


@pytest.mark.parametrize("form", ["safetensors", "pth", "hub", "hub-bin"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_layout_loads_with_the_official_outputs(tmp_path, case, form):
    name, writer = CASES[case]
    reference, x = _randomized(name), _clips(name)
    path = _save(writer(reference.state_dict()), tmp_path, form)
    model = create_model(name, checkpoint=path, **_without_classes(name)).eval()
    assert model.num_classes == ARCH[name]["num_classes"]  # from the converted head
    assert relative_error(_out(model, x), _out(reference, x)) <= TOLERANCE
    load_checkpoint(model, path, complete=True)  # every weight given: the testing path accepts it


@pytest.mark.parametrize("form", ["safetensors", "hub"])
def test_a_bare_transformers_model_loads_as_a_backbone(tmp_path, form):
    reference, x = _randomized(IMAGE), _clips(IMAGE)
    path = _save(_hf_bare(reference.state_dict()), tmp_path, form)
    model = create_model(IMAGE, checkpoint=path, **ARCH[IMAGE]).eval()
    assert relative_error(_out(model, x, features=True), _out(reference, x, features=True)) <= TOLERANCE
    with pytest.raises(IncompleteCheckpointError, match="head.projection"):
        load_checkpoint(model, path, complete=True)  # no head in the file: testing must not score a random one


def test_a_transformers_mae_loads_into_the_mae_model(tmp_path):
    reference = _randomized(IMAGE, mae=True)
    path = _save(official_to_hf(reference.state_dict()), tmp_path, "hub")
    model = create_model("mae_" + IMAGE, checkpoint=path, **_without_classes(IMAGE))
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_the_layout_found_is_logged_once(tmp_path, caplog):
    path = _save(official_to_timm(_randomized(IMAGE).state_dict()), tmp_path, "hub")
    with caplog.at_level(logging.INFO, logger="hiera_video.models.checkpoint"):
        read_checkpoint(path)
    lines = [r.getMessage() for r in caplog.records if "layout" in r.getMessage()]
    assert len(lines) == 1 and "timm layout" in lines[0] and "model.safetensors" in lines[0]


def test_detect_layout():
    state = _randomized(IMAGE).state_dict()
    assert detect_layout(state) == OFFICIAL
    assert detect_layout(official_to_timm(state)) == TIMM
    assert detect_layout(official_to_hf(state)) == HF
    assert detect_layout(_hf_bare(state)) == HF
    assert detect_layout({"backbone.blocks.0.norm1.weight": torch.zeros(1)}) is None


# -------------------------------------------------------------------------------------------------------
# timm's own Hiera as the oracle
# -------------------------------------------------------------------------------------------------------
def _timm_hiera(name):
    """timm's Hiera with our tiny architecture and random weights (timm registers no video names; its class
    takes the video arguments)."""
    timm_hiera = pytest.importorskip("timm.models.hiera")
    arch = dict(ARCH[name])
    if name == VIDEO:
        arch.update(q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8), patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4),
                    patch_padding=(1, 3, 3), sep_pos_embed=True)
    torch.manual_seed(2)
    model = timm_hiera.Hiera(img_size=arch.pop("input_size"), **arch).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


@pytest.mark.parametrize("name", [IMAGE, VIDEO])
def test_timm_weights_give_timm_outputs(tmp_path, name):
    timm_model, x = _timm_hiera(name), _clips(name)
    path = _save(timm_model.state_dict(), tmp_path, "safetensors")
    model = create_model(name, checkpoint=path, **_without_classes(name)).eval()
    assert relative_error(_out(model, x), _out(timm_model, x)) <= TOLERANCE


@pytest.mark.parametrize("name", [IMAGE, VIDEO])
def test_our_weights_written_for_timm_load_strictly_in_timm(name):
    timm_model, ours, x = _timm_hiera(name), _randomized(name), _clips(name)
    timm_model.load_state_dict(official_to_timm(ours.state_dict()), strict=True)
    assert relative_error(_out(timm_model, x), _out(ours, x)) <= TOLERANCE


# -------------------------------------------------------------------------------------------------------
# Writers
# -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", [TIMM, HF])
@pytest.mark.parametrize("mae", [False, True])
def test_writers_round_trip(layout, mae):
    state = _randomized(IMAGE, mae=mae).state_dict()
    written = convert_layout(state, layout)
    assert detect_layout(written) == layout
    back = convert_layout(written, OFFICIAL)
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)
    assert convert_layout(written, TIMM if layout == HF else HF).keys() == convert_layout(
        state, TIMM if layout == HF else HF).keys()  # layout to layout through the official names


def test_transformers_names_follow_the_stages():
    written = official_to_hf(_randomized(IMAGE).state_dict())  # stages (1, 2, 2, 1)
    assert official_depths(_randomized(IMAGE).state_dict()) == [1, 2, 2, 1]
    assert "hiera.encoder.stages.2.layers.1.layernorm_after.weight" in written  # block 4
    assert "hiera.encoder.stages.3.layers.0.proj.weight" in written  # block 5 changes width
    assert {"hiera.pooler.layernorm.weight", "classifier.weight"} <= set(written)
    bare = _hf_bare(_randomized(IMAGE).state_dict())
    assert "pooler.layernorm.bias" in bare and not any(k.startswith(("hiera.", "classifier")) for k in bare)


def test_video_weights_have_no_transformers_layout():
    with pytest.raises(LayoutError, match="image-only"):
        official_to_hf(_randomized(VIDEO).state_dict())


def _full_tiny_image():
    """Every constructor argument of the tiny image model."""
    return {**ARCH[IMAGE], "patch_kernel": (7, 7), "patch_stride": (4, 4), "patch_padding": (3, 3),
            "mlp_ratio": 4.0, "head_mul": 2.0, "dim_mul": 2.0, "q_pool": 3, "q_stride": (2, 2),
            "mask_unit_size": (8, 8), "mask_unit_attn": (True, True, False, False), "drop_path_rate": 0.0,
            "in_chans": 3}


def test_hub_folders_written_for_each_layout_load_back(tmp_path):
    reference, x = _randomized(IMAGE), _clips(IMAGE)
    arch = _full_tiny_image()
    for layout in (OFFICIAL, TIMM, HF):
        folder = str(tmp_path / layout)
        write_hub_folder(folder, convert_layout(reference.state_dict(), layout),
                         hub_config(layout, arch, IMAGE, 7, {"mean": (0.5,) * 3}))
        model = create_model(IMAGE, checkpoint=folder, **_without_classes(IMAGE)).eval()
        assert relative_error(_out(model, x), _out(reference, x)) <= TOLERANCE
    hf = json.loads((tmp_path / HF / "config.json").read_text())
    assert hf["depths"] == [1, 2, 2, 1] and hf["num_heads"] == [1, 2, 4, 8] and len(hf["id2label"]) == 7
    timm = json.loads((tmp_path / TIMM / "config.json").read_text())
    assert timm["architecture"] == IMAGE and timm["model_args"]["img_size"] == [64, 64]


# -------------------------------------------------------------------------------------------------------
# Bad files
# -------------------------------------------------------------------------------------------------------
def _load_error(tmp_path, state_dict, form="safetensors"):
    path = _save(state_dict, tmp_path, form)
    with pytest.raises(CheckpointError) as error:
        create_model(IMAGE, checkpoint=path, **_without_classes(IMAGE))
    return path, str(error.value)


def test_an_unknown_layout_is_an_error_naming_the_file(tmp_path):
    path, message = _load_error(tmp_path, {"encoder.layer.0.attention.weight": torch.zeros(2, 2)})
    assert path in message and "encoder.layer.0.attention.weight" in message and "timm" in message


def test_a_half_converted_transformers_file_names_its_leftover_keys(tmp_path):
    state = official_to_hf(_randomized(IMAGE).state_dict())
    state["blocks.0.norm1.weight"] = state.pop("hiera.encoder.stages.0.layers.0.layernorm_before.weight")
    path, message = _load_error(tmp_path, state)
    assert path in message and "blocks.0.norm1.weight" in message


def test_a_half_converted_timm_file_names_the_clash(tmp_path):
    state = official_to_timm(_randomized(IMAGE).state_dict())
    state["head.projection.weight"] = state["head.fc.weight"].clone()  # both layouts' head in one file
    path, message = _load_error(tmp_path, state)
    assert path in message and "head.projection.weight" in message


def test_timm_only_weights_are_refused_by_name(tmp_path):
    state = official_to_timm(_randomized(IMAGE).state_dict())
    state["pos_embed_win"] = torch.zeros(1, 16, 8, 8)  # timm's abswin models
    state["blocks.0.ls1.gamma"] = torch.ones(16)  # layer scale
    path, message = _load_error(tmp_path, state, form="hub")
    assert path in message and "pos_embed_win" in message and "blocks.0.ls1.gamma" in message


def test_weights_of_another_shape_are_named(tmp_path):
    state = official_to_hf(_randomized(IMAGE).state_dict())
    state["hiera.encoder.stages.0.layers.0.attn.qkv.weight"] = torch.zeros(48, 3)
    path, message = _load_error(tmp_path, state)
    assert path in message and "blocks.0.attn.qkv.weight" in message


def test_a_folder_without_weights_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="model.safetensors or pytorch_model.bin") as error:
        read_checkpoint(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_layout_functions_refuse_other_keys():
    with pytest.raises(LayoutError, match="no official Hiera name"):
        hf_to_official({"hiera.encoder.stages.0.layers.0.attention.weight": torch.zeros(1)})
    with pytest.raises(LayoutError, match="no official Hiera name"):
        timm_to_official({"head.fc.weight": torch.zeros(1), "stem.conv.weight": torch.zeros(1)})
    with pytest.raises(LayoutError, match="unknown layout"):
        convert_layout({"pos_embed": torch.zeros(1, 4, 2)}, "onnx")


# -------------------------------------------------------------------------------------------------------
# Every place a checkpoint path is taken
# -------------------------------------------------------------------------------------------------------
TINY_OPTS = ["HIERA.EMBED_DIM", "16", "HIERA.NUM_HEADS", "1", "HIERA.STAGES", "[1, 2, 2, 1]", "DATA.NUM_FRAMES", "4",
             "DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64", "DATA.TRAIN_JITTER_SCALES", "[64, 80]"]


def test_a_timm_hub_folder_serves_predict_features_and_export(tmp_path):
    from hiera_video.inference.features import load_feature_model
    from hiera_video.inference.loading import load_classifier
    from hiera_video.models.export import load_model_for_export

    reference, x = _randomized(VIDEO), _clips(VIDEO)
    (tmp_path / "hub").mkdir()
    folder = _save(official_to_timm(reference.state_dict()), tmp_path / "hub", "hub")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(7)))
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(f"MODEL:\n  MODEL_NAME: {VIDEO}\n")
    loaded = [load_classifier(folder, model_name=VIDEO, labels_file=str(labels), opts=TINY_OPTS).model,
              load_feature_model(folder, model_name=VIDEO, opts=TINY_OPTS)[0],
              load_model_for_export(folder, cfg_file=str(cfg_file), opts=TINY_OPTS)]
    for model in loaded:
        assert relative_error(_out(model, x), _out(reference, x)) <= TOLERANCE


# -------------------------------------------------------------------------------------------------------
# transformers' own Hiera as the oracle (skipped where transformers is not installed)
# -------------------------------------------------------------------------------------------------------
def _transformers_config():
    transformers = pytest.importorskip("transformers")
    return transformers, transformers.HieraConfig(embed_dim=16, image_size=[64, 64], depths=[1, 2, 2, 1],
                                                  num_heads=[1, 2, 4, 8], num_labels=7)


@pytest.mark.parametrize("bare", [False, True])
def test_a_transformers_save_pretrained_folder_gives_transformers_outputs(tmp_path, bare):
    transformers, config = _transformers_config()
    torch.manual_seed(3)
    hf_model = (transformers.HieraModel if bare else transformers.HieraForImageClassification)(config).eval()
    with torch.no_grad():
        for parameter in hf_model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    hf_model.save_pretrained(str(tmp_path))  # config.json + model.safetensors, as downloaded from the hub
    model = create_model(IMAGE, checkpoint=str(tmp_path), **ARCH[IMAGE]).eval()
    x = _clips(IMAGE)
    with torch.no_grad():
        expected = hf_model(pixel_values=x)
    expected = expected.pooler_output if bare else expected.logits
    assert relative_error(_out(model, x, features=bare), expected) <= TOLERANCE


def test_our_transformers_hub_folder_loads_in_transformers(tmp_path):
    transformers, _ = _transformers_config()
    reference, x = _randomized(IMAGE), _clips(IMAGE)
    write_hub_folder(str(tmp_path), official_to_hf(reference.state_dict()),
                     hub_config(HF, {**_full_tiny_image(), "num_classes": 7}, IMAGE, 7))
    hf_model = transformers.HieraForImageClassification.from_pretrained(str(tmp_path)).eval()
    with torch.no_grad():
        assert relative_error(hf_model(pixel_values=x).logits, _out(reference, x)) <= TOLERANCE
