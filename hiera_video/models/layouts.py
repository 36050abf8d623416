"""Hiera weight layouts: which one a state dict uses, and conversion between them (like timm's
``checkpoint_filter_fn``, one function per layout).

The HF hub holds Hiera weights in three layouts:

- ``official`` (``facebook/hiera_*``, the official release and this toolkit): ``patch_embed.proj.*``,
  ``pos_embed``, ``blocks.{g}.norm1.*``, ``norm.*``, ``head.projection.*``; MAE adds ``encoder_norm.*``,
  ``multi_scale_fusion_heads.*``, ``decoder_*``, ``mask_token``.
- ``timm`` (``timm/hiera_*``): official names except ``head.projection.*`` -> ``head.fc.*`` and ``norm.*``
  (an MAE's ``encoder_norm.*``) -> ``head.norm.*``.
- ``hf`` (transformers, ``facebook/hiera-*-hf``): ``hiera.embeddings.*``,
  ``hiera.encoder.stages.{s}.layers.{l}.*`` (``layernorm_before`` / ``layernorm_after`` for ``norm1`` /
  ``norm2``), ``hiera.pooler.layernorm.*`` and ``classifier.*`` (``HieraForImageClassification``); the same
  without ``hiera.``, ``classifier`` nor anything but the pooler's norm for ``HieraModel``;
  ``HieraForPreTraining`` keeps ``hiera.`` and adds ``encoder_norm``, ``multiscale_fusion.*`` and
  ``decoder.*``. Block ``g`` of the official layout is layer ``l`` of stage ``s`` with
  ``g = sum(depths[:s]) + l``.

Every tensor has the same shape in the three layouts: transformers' patch embedding is the same
convolution, its position embedding the same [1, N, C], and its attention splits the qkv output as
(3, heads, head_dim) in the official order, so only names change. transformers' Hiera is image-only:
video weights (``pos_embed_spatial`` / ``pos_embed_temporal``) have no transformers names.
"""
import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from hiera_video.utils.errors import UserError

StateDict = Dict[str, torch.Tensor]

OFFICIAL, TIMM, HF = "official", "timm", "hf"
LAYOUTS = (OFFICIAL, TIMM, HF)
LAYOUT_NAMES = {OFFICIAL: "official Hiera", TIMM: "timm", HF: "HF transformers"}

_BLOCK_PARTS = r"(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2|proj)\.(weight|bias)"
# Every key an official Hiera classifier or MAE state dict can hold.
_OFFICIAL_KEY = re.compile(
    r"(patch_embed\.proj\.(weight|bias)|pos_embed|pos_embed_spatial|pos_embed_temporal|norm\.(weight|bias)"
    r"|head\.projection\.(weight|bias)|encoder_norm\.(weight|bias)|multi_scale_fusion_heads\.\d+\.(weight|bias)"
    r"|mask_token|decoder_pos_embed|decoder_(embed|norm|pred)\.(weight|bias)"
    rf"|blocks\.\d+\.{_BLOCK_PARTS}|decoder_blocks\.\d+\.{_BLOCK_PARTS})")
_OFFICIAL_MARKERS = ("patch_embed.", "blocks.", "pos_embed", "head.projection.", "encoder_norm.")

# timm <-> official, outside the blocks (which keep their names).
_TIMM_HEAD = (("head.fc.", "head.projection."),)
# transformers <-> official, outside the blocks; transformers names without the ``hiera.`` prefix.
_HF_NAMES = (
    ("embeddings.patch_embeddings.projection.", "patch_embed.proj."),
    ("embeddings.position_embeddings", "pos_embed"),
    ("pooler.layernorm.", "norm."),
    ("classifier.", "head.projection."),
    ("encoder_norm.", "encoder_norm."),
    ("multiscale_fusion.multi_scale_fusion_heads.", "multi_scale_fusion_heads."),
    ("decoder.mask_token", "mask_token"),
    ("decoder.decoder_position_embeddings", "decoder_pos_embed"),
    ("decoder.decoder_embeddings.", "decoder_embed."),
    ("decoder.decoder_norm.", "decoder_norm."),
    ("decoder.decoder_pred.", "decoder_pred."),
)
# Parts of a transformers layer <-> those of an official block.
_HF_LAYER_PARTS = (("layernorm_before.", "norm1."), ("layernorm_after.", "norm2."))
_HF_LAYER = re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.(.+)")
_HF_DECODER_LAYER = re.compile(r"decoder\.decoder_block\.layers\.(\d+)\.(.+)")
# transformers names under ``hiera.`` in the prefixed models (everything of HieraModel).
_HF_ENCODER_PARTS = ("embeddings.", "encoder.", "pooler.")


class LayoutError(UserError, ValueError):
    """A state dict in no known Hiera layout, or one whose keys do not all convert (a half-converted file)."""


def detect_layout(state_dict: StateDict) -> Optional[str]:
    """``"hf"``, ``"timm"`` or ``"official"`` by the keys of ``state_dict``; None when none of them fits."""
    keys = list(state_dict)
    if any(key.startswith(("hiera.embeddings.", "hiera.encoder.", "embeddings.patch_embeddings.", "encoder.stages."))
           for key in keys):
        return HF
    if any(key.startswith(("head.fc.", "head.norm.")) or key == "pos_embed_win" for key in keys):
        return TIMM
    if any(key.startswith(_OFFICIAL_MARKERS) for key in keys):
        return OFFICIAL
    return None


def to_official(state_dict: StateDict) -> Tuple[StateDict, Optional[str]]:
    """(``state_dict`` in the official layout, the layout it was in); a dict in no known layout is returned
    unchanged with None (a toolkit detector's ``backbone.*``, or a foreign file: loading names it)."""
    layout = detect_layout(state_dict)
    if layout == TIMM:
        return timm_to_official(state_dict), layout
    if layout == HF:
        return hf_to_official(state_dict), layout
    return state_dict, layout


def convert_layout(state_dict: StateDict, layout: str, depths: Optional[Sequence[int]] = None) -> StateDict:
    """``state_dict`` (any known layout) in ``layout``; ``depths`` (blocks per stage) only for ``"hf"``, when
    the stage boundaries cannot be read from the weights (see :func:`official_depths`)."""
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}.")
    official, found = to_official(state_dict)
    if found is None:
        raise LayoutError(f"the weights are in no known Hiera layout (first keys: {_some(list(state_dict))}).")
    if layout == TIMM:
        return official_to_timm(official)
    if layout == HF:
        return official_to_hf(official, depths)
    return official


# -------------------------------------------------------------------------------------------------------
# timm
# -------------------------------------------------------------------------------------------------------
def timm_to_official(state_dict: StateDict) -> StateDict:
    """A timm Hiera state dict in official names: ``head.fc`` -> ``head.projection``, ``head.norm`` -> ``norm``
    (``encoder_norm`` for an MAE, which has ``decoder_*`` keys). Raises LayoutError for timm-only weights
    (the abswin models' ``pos_embed_win``, layer scale) and keys left over."""
    norm = "encoder_norm." if any(key.startswith("decoder_") for key in state_dict) else "norm."
    renames = _TIMM_HEAD + (("head.norm.", norm),)
    return _checked_official(_rename_prefixes(state_dict, renames), "timm")


def official_to_timm(state_dict: StateDict) -> StateDict:
    """An official state dict in timm's names (what timm's ``checkpoint_filter_fn`` makes of it)."""
    norm = "encoder_norm." if "encoder_norm.weight" in state_dict else "norm."
    renames = tuple((official, timm) for timm, official in _TIMM_HEAD) + ((norm, "head.norm."),)
    return _rename_prefixes(_checked_official(state_dict, "official"), renames)


# -------------------------------------------------------------------------------------------------------
# HF transformers
# -------------------------------------------------------------------------------------------------------
def hf_to_official(state_dict: StateDict) -> StateDict:
    """A transformers Hiera state dict (``HieraForImageClassification``, ``HieraModel`` or
    ``HieraForPreTraining``) in official names. Raises LayoutError naming the keys that do not convert."""
    names = [key.removeprefix("hiera.") for key in state_dict]
    starts = _stage_starts(_hf_depths(names))
    converted, leftover = {}, []
    for key, name in zip(state_dict, names):
        official = _hf_name_to_official(name, starts)
        if official is None:
            leftover.append(key)
        elif official in converted:
            raise LayoutError(f"two keys of the transformers layout give {official} (is the file half-converted?).")
        else:
            converted[official] = state_dict[key]
    if leftover:
        raise LayoutError(f"{len(leftover)} keys have no official Hiera name (a half-converted file, or another "
                          f"model than Hiera?): {_some(leftover)}")
    return _checked_official(converted, "HF transformers")


def official_to_hf(state_dict: StateDict, depths: Optional[Sequence[int]] = None) -> StateDict:
    """An official state dict in transformers' names: ``HieraForImageClassification`` when it has a head,
    ``HieraForPreTraining`` for an MAE, ``HieraModel`` (no ``hiera.`` prefix) otherwise. ``depths``: blocks
    per stage, read from the weights when not given (:func:`official_depths`)."""
    state_dict = _checked_official(state_dict, "official")
    if "pos_embed_spatial" in state_dict:
        raise LayoutError("transformers' Hiera is image-only: video weights (pos_embed_spatial / "
                          "pos_embed_temporal) have no transformers names; use the official or timm layout.")
    depths = list(depths) if depths is not None else official_depths(state_dict)
    prefixed = "head.projection.weight" in state_dict or "mask_token" in state_dict
    stage_of_block = [(s, l) for s, depth in enumerate(depths) for l in range(depth)]
    converted = {}
    for key, value in state_dict.items():
        name = _official_name_to_hf(key, stage_of_block)
        if prefixed and name.startswith(_HF_ENCODER_PARTS):
            name = "hiera." + name
        converted[name] = value
    return converted


def official_depths(state_dict: StateDict) -> List[int]:
    """Blocks per stage of an official state dict: a stage starts at each block with a ``proj`` (the width
    change). Raises LayoutError when the weights show no stage boundary (give ``depths`` then)."""
    blocks = {int(m.group(1)) for key in state_dict for m in [re.match(r"blocks\.(\d+)\.", key)] if m}
    starts = sorted(int(key.split(".")[1]) for key in state_dict
                    if re.fullmatch(r"blocks\.\d+\.proj\.weight", key))
    if not blocks or not starts:
        raise LayoutError("cannot tell the stages of these weights (no block changes width); give depths.")
    bounds = [0, *starts, max(blocks) + 1]
    return [end - start for start, end in zip(bounds, bounds[1:])]


def _hf_depths(names: List[str]) -> List[int]:
    """Layers per stage, from transformers names (``encoder.stages.{s}.layers.{l}.*``)."""
    layers: Dict[int, int] = {}
    for name in names:
        match = _HF_LAYER.fullmatch(name)
        if match:
            stage, layer = int(match.group(1)), int(match.group(2))
            layers[stage] = max(layers.get(stage, 0), layer + 1)
    if sorted(layers) != list(range(len(layers))):
        raise LayoutError(f"the transformers weights have layers of stages {sorted(layers)}: some stages are missing.")
    return [layers[stage] for stage in range(len(layers))]


def _stage_starts(depths: List[int]) -> List[int]:
    """Official index of each stage's first block."""
    return [sum(depths[:stage]) for stage in range(len(depths))]


def _hf_name_to_official(name: str, starts: List[int]) -> Optional[str]:
    """The official name of one transformers name (``hiera.`` removed), or None when it has none."""
    match = _HF_LAYER.fullmatch(name)
    if match:
        stage, layer, part = int(match.group(1)), int(match.group(2)), match.group(3)
        return f"blocks.{starts[stage] + layer}.{_rename(part, _HF_LAYER_PARTS)}"
    match = _HF_DECODER_LAYER.fullmatch(name)
    if match:
        return f"decoder_blocks.{match.group(1)}.{_rename(match.group(2), _HF_LAYER_PARTS)}"
    return _renamed(name, _HF_NAMES)


def _official_name_to_hf(key: str, stage_of_block: List[Tuple[int, int]]) -> str:
    """The transformers name (without ``hiera.``) of one official key."""
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if match:
        block = int(match.group(1))
        if block >= len(stage_of_block):
            raise LayoutError(f"{key}: block {block} is past the {len(stage_of_block)} blocks of the given depths.")
        stage, layer = stage_of_block[block]
        return f"encoder.stages.{stage}.layers.{layer}.{_rename(match.group(2), _reversed(_HF_LAYER_PARTS))}"
    match = re.fullmatch(r"decoder_blocks\.(\d+)\.(.+)", key)
    if match:
        return f"decoder.decoder_block.layers.{match.group(1)}.{_rename(match.group(2), _reversed(_HF_LAYER_PARTS))}"
    return _rename(key, _reversed(_HF_NAMES))


# -------------------------------------------------------------------------------------------------------
# Hub folders
# -------------------------------------------------------------------------------------------------------
def hub_config(layout: str, architecture: Dict[str, Any], name: str, num_classes: int,
               preprocessing: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The ``config.json`` of a hub folder in ``layout`` for a Hiera built as ``Hiera(**architecture)`` (every
    constructor argument, defaults included), registered as ``name``, with ``num_classes`` outputs (0: none).

    official: the constructor arguments (what the official hub repos hold); timm: timm's ``architecture`` /
    ``num_classes`` / ``model_args`` / ``pretrained_cfg``; hf: a transformers ``HieraConfig``.
    """
    arguments = {key: list(value) if isinstance(value, tuple) else value for key, value in architecture.items()}
    arguments["num_classes"] = num_classes
    if layout == OFFICIAL:
        return arguments
    if layout == TIMM:
        return _timm_config(arguments, name, preprocessing or {})
    if layout == HF:
        return _hf_config(arguments)
    raise LayoutError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}.")


def _timm_config(arguments: Dict[str, Any], name: str, preprocessing: Dict[str, Any]) -> Dict[str, Any]:
    """timm's hub ``config.json``: ``timm.create_model(architecture, **model_args)`` builds the model."""
    model_args = {("img_size" if key == "input_size" else key): value for key, value in arguments.items()
                  if key not in ("head_dropout", "num_classes")}
    pretrained_cfg = {key: list(value) if isinstance(value, tuple) else value for key, value in preprocessing.items()
                      if key in ("input_size", "mean", "std")}
    pretrained_cfg.update(classifier="head.fc", num_classes=arguments["num_classes"])
    return dict(architecture=name.removeprefix("mae_"), num_classes=arguments["num_classes"],
                num_features=_last_width(arguments), global_pool="avg", model_args=model_args,
                pretrained_cfg=pretrained_cfg)


def _hf_config(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """A transformers ``HieraConfig`` (as ``config.json``) for an image Hiera's constructor arguments."""
    if len(arguments["input_size"]) != 2:
        raise LayoutError("transformers' Hiera is image-only: a video model has no transformers config; use the "
                          "official or timm layout.")
    stages = len(arguments["stages"])
    num_classes = arguments["num_classes"]
    return dict(
        model_type="hiera", architectures=["HieraForImageClassification" if num_classes else "HieraModel"],
        embed_dim=arguments["embed_dim"], image_size=arguments["input_size"], patch_size=arguments["patch_kernel"],
        patch_stride=arguments["patch_stride"], patch_padding=arguments["patch_padding"],
        mlp_ratio=arguments["mlp_ratio"], depths=arguments["stages"],
        num_heads=[int(arguments["num_heads"] * arguments["head_mul"] ** s) for s in range(stages)],
        embed_dim_multiplier=arguments["dim_mul"], num_query_pool=arguments["q_pool"],
        query_stride=arguments["q_stride"], masked_unit_size=arguments["mask_unit_size"],
        masked_unit_attention=arguments["mask_unit_attn"], drop_path_rate=arguments["drop_path_rate"],
        num_channels=arguments["in_chans"], hidden_act="gelu", layer_norm_eps=1e-6,
        id2label={str(i): f"LABEL_{i}" for i in range(num_classes)},
        label2id={f"LABEL_{i}": i for i in range(num_classes)},
    )


def _last_width(arguments: Dict[str, Any]) -> int:
    """Channels of the last stage."""
    return int(arguments["embed_dim"] * arguments["dim_mul"] ** (len(arguments["stages"]) - 1))


def write_hub_folder(folder: str, state_dict: StateDict, config: Dict[str, Any]) -> None:
    """Write ``folder/model.safetensors`` and ``folder/config.json``, the form of a hub repo's download."""
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state_dict.items()}, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump(config, handle, indent=2)


# -------------------------------------------------------------------------------------------------------
# Shared
# -------------------------------------------------------------------------------------------------------
def _renamed(name: str, pairs: Sequence[Tuple[str, str]]) -> Optional[str]:
    """``name`` with the first matching ``(old prefix, new prefix)`` pair applied, None when none matches; a
    prefix without a final dot must match the whole name."""
    for old, new in pairs:
        if name == old or (old.endswith(".") and name.startswith(old)):
            return new + name[len(old):]
    return None


def _rename(name: str, pairs: Sequence[Tuple[str, str]]) -> str:
    """``name`` with the first matching pair of ``pairs`` applied, unchanged when none matches."""
    renamed = _renamed(name, pairs)
    return name if renamed is None else renamed


def _reversed(pairs: Sequence[Tuple[str, str]]) -> Tuple[Tuple[str, str], ...]:
    """``pairs`` the other way: (new, old)."""
    return tuple((new, old) for old, new in pairs)


def _rename_prefixes(state_dict: StateDict, pairs: Sequence[Tuple[str, str]]) -> StateDict:
    """``state_dict`` with :func:`_rename` applied to every key; two keys that end on one name are an error."""
    renamed: StateDict = {}
    for key, value in state_dict.items():
        name = _rename(key, pairs)
        if name in renamed:
            raise LayoutError(f"two keys give {name} (is the file half-converted, mixing layouts?).")
        renamed[name] = value
    return renamed


def _checked_official(converted: StateDict, layout: str) -> StateDict:
    """``converted`` when every key is an official Hiera name; else a LayoutError naming those left over."""
    leftover = [key for key in converted if not _OFFICIAL_KEY.fullmatch(key)]
    if leftover:
        hint = (" (timm's abswin models and layer scale have no official counterpart)"
                if any(k.startswith(("pos_embed_win", "blocks.")) for k in leftover) else "")
        raise LayoutError(f"{len(leftover)} keys of the {layout} layout have no official Hiera name{hint}: "
                          f"{_some(leftover)}")
    if "pos_embed" in converted and converted["pos_embed"].dim() != 3:
        raise LayoutError(f"pos_embed has shape {tuple(converted['pos_embed'].shape)}, not [1, tokens, channels] "
                          "(timm's abswin models have no official counterpart).")
    return converted


def _some(keys: List[str], limit: int = 5) -> str:
    """The first ``limit`` keys, comma-separated, with the count of the others."""
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
