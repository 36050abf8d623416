"""Reading checkpoint files and loading their weights into Hiera models.

:func:`read_checkpoint_contents` is the one reader of every checkpoint file (official files, plain state
dicts, safetensors, toolkit training checkpoints, and a downloaded hub folder holding ``config.json`` with
``model.safetensors`` or ``pytorch_model.bin``): one read gives the weights and the entries stored
beside them, after the checks that name the file when it is missing, corrupt or unsafe to unpickle.
Weights in timm's or HF transformers' layout come out in official names (:mod:`.layouts`).
A file whose weights hold NaN or infinity is refused at that read: every score of such a model is NaN.
All compatibility rules live in ``adapt_state_dict``: MAE-only keys are dropped for classifiers, position
embeddings are interpolated to the model's input size, and a classifier head of another size is left to
its fresh initialization with a warning (fine-tuning to other classes). Testing and predict load with
``complete=True`` instead: a weight the file does not give would be random, so it is an error.
"""
import logging
import os
import pickle
from typing import Any, Dict, List, NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiera_video.utils.errors import UserError

from .integrity import verify_checksum
from .layouts import LAYOUT_NAMES, OFFICIAL, LayoutError, to_official

logger = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]

# Keys of an MAE checkpoint that a classifier does not have.
_MAE_ONLY_PREFIXES = ("encoder_norm.", "multi_scale_fusion_heads.", "decoder_", "mask_token")
_HEAD_KEYS = ("head.projection.weight", "head.projection.bias")
# The weights of a downloaded hub folder, in the order looked for.
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class LoadResult(NamedTuple):
    """What ``load_checkpoint`` did: keys the model kept its own values for, keys it ignored."""
    missing_keys: List[str]
    unexpected_keys: List[str]
    reinitialized_keys: List[str]


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file cannot be read or does not fit the model."""


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint's weights hold NaN or infinite values (a diverged training run or a damaged file)."""


class IncompleteCheckpointError(CheckpointError):
    """A checkpoint lacks weights of the model (or has a classifier head of another size) where every
    weight must come from the file: the rest would be random."""


class CheckpointContents(NamedTuple):
    """What one read of a checkpoint file gives: its model weights and everything stored beside them."""

    state_dict: StateDict  # the model weights, DDP's "module." prefixes removed
    # The file's other top-level entries. A toolkit training checkpoint: ``epoch``, ``optimizer_state``,
    # ``scaler_state``, ``cfg`` (YAML text), ``class_names``, ``checksum`` and, when preempted,
    # ``resume_state`` (see :mod:`hiera_video.engine.checkpoint`). Empty for a plain state dict or safetensors.
    metadata: Dict[str, Any]

    @property
    def cfg_yaml(self) -> Optional[str]:
        """The YAML text of the config the weights were trained with, or None when the file has none."""
        text = self.metadata.get("cfg")
        return text if isinstance(text, str) else None

    @property
    def class_names(self) -> Optional[List[str]]:
        """The class names by index stored with the weights, or None when the file has none."""
        names = self.metadata.get("class_names")
        return [str(name) for name in names] if isinstance(names, (list, tuple)) and names else None


def read_checkpoint_contents(path: str | os.PathLike) -> CheckpointContents:
    """Read an official / toolkit checkpoint, a plain ``.pth`` state dict, a ``.safetensors`` file or a hub
    folder (``model.safetensors`` or ``pytorch_model.bin`` inside) once; timm and transformers weights come
    out in official names, with one log line naming their layout.

    Pickles are loaded with ``weights_only=True``. A missing, truncated or corrupt file, a pickle that
    would run code, a toolkit checkpoint whose content no longer matches its checksum and weights of a
    known layout that do not all convert raise :class:`CheckpointError` naming the file; weights holding
    NaN or infinity raise :class:`NonFiniteWeightsError` naming the file and its first such tensors.
    """
    path = _hub_weights_file(os.fspath(path))
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist (check the path, e.g. "
                              f"TRAIN.CHECKPOINT_FILE_PATH / TEST.CHECKPOINT_FILE_PATH).")
    if path.endswith(".safetensors") or _looks_like_safetensors(path):
        contents = CheckpointContents(_read_safetensors(path), {})
    else:
        content = _load_pickle(path)
        try:
            verify_checksum(content, path)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
        contents = _split_weights(content, path)
    contents = contents._replace(state_dict=_in_official_layout(contents.state_dict, path))
    _refuse_non_finite(contents.state_dict, path)
    return contents


def _hub_weights_file(path: str) -> str:
    """The weights file of a hub folder (``path`` itself when it is no folder); a CheckpointError for a
    folder without one."""
    if not os.path.isdir(path):
        return path
    found = next((os.path.join(path, name) for name in HUB_WEIGHT_FILES if os.path.isfile(os.path.join(path, name))),
                 None)
    if found is None:
        raise CheckpointError(f"checkpoint {path} is a folder without {' or '.join(HUB_WEIGHT_FILES)} (a downloaded "
                              f"hub folder holds config.json and one of them); give the weights file or such a folder."
                              + _run_folder_hint(path))
    return found


def _run_folder_hint(path: str) -> str:
    """For a training run's OUTPUT_DIR: which checkpoint file to give instead (its newest by name), else ""."""
    folder = os.path.join(path, "checkpoints")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".pyth")) if os.path.isdir(folder) else []
    if not names:
        return ""
    return f" It looks like a run's OUTPUT_DIR: give one of its checkpoints, e.g. {os.path.join(folder, names[-1])}."


def _in_official_layout(state_dict: StateDict, path: str) -> StateDict:
    """``state_dict`` in official names, converted from timm's or transformers' layout with an info line."""
    try:
        converted, layout = to_official(state_dict)
    except LayoutError as error:
        raise CheckpointError(f"cannot load {path}: {error}") from None
    if layout not in (None, OFFICIAL):
        logger.info("%s: weights in the %s layout, converted to official Hiera names.", path, LAYOUT_NAMES[layout])
    return converted


def read_checkpoint(path: str | os.PathLike) -> StateDict:
    """The model weights of a checkpoint file (:func:`read_checkpoint_contents` without the metadata)."""
    return read_checkpoint_contents(path).state_dict


def non_finite_tensors(state_dict: StateDict) -> List[str]:
    """Names of the floating-point (or complex) tensors of ``state_dict`` holding NaN or infinity, in order."""
    return [key for key, value in state_dict.items()
            if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all())]


def _refuse_non_finite(state_dict: StateDict, path: str) -> None:
    """Raise NonFiniteWeightsError naming ``path`` and its first tensors with NaN / infinity, if any."""
    bad = non_finite_tensors(state_dict)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise NonFiniteWeightsError(
            f"refusing to load {path}: {len(bad)} of its weight tensors hold NaN or infinite values ({shown}); "
            "every score of such a model is NaN. The training that wrote it diverged or the file was damaged: "
            "use an earlier checkpoint.")


def _load_pickle(path: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; every way it fails is a CheckpointError naming ``path``."""
    if not _looks_like_torch_save(path):
        raise CheckpointError(f"cannot read checkpoint {path}: it is neither a torch.save file (zip or pickle) nor "
                              f"safetensors. The file is corrupt or of another kind.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" not in str(error):
            raise CheckpointError(f"cannot read checkpoint {path}: {str(error).splitlines()[0]}. The file "
                                  f"is corrupt or not a PyTorch checkpoint.") from error
        reason = next((line for line in str(error).splitlines() if "Unsupported" in line), "")
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain containers, which "
            f"could run code when unpickled ({reason.strip()}). If you trust the file, re-save its state "
            f"dict with torch.save(model.state_dict(), path).") from error
    except Exception as error:  # corrupt bytes make the unpickler fail in many ways (IndexError, KeyError, ...)
        raise CheckpointError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}. The file is "
                              f"truncated, corrupt, or not a PyTorch/safetensors checkpoint.") from error


def _looks_like_torch_save(path: str) -> bool:
    """A zip archive (torch.save since 1.6) or a pickle of protocol 2 or later (the legacy format)."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def _looks_like_safetensors(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _read_safetensors(path: str) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read safetensors file {path}: {error}.") from error


def _split_weights(content: Any, path: str) -> CheckpointContents:
    """Find the state dict inside the containers used by official, toolkit, MAE and DDP checkpoints; the
    container's other entries are the metadata."""
    weights, metadata = content, {}
    if isinstance(content, dict):
        key = next((key for key in ("model_state", "model", "state_dict") if isinstance(content.get(key), dict)), None)
        if key is not None:
            weights, metadata = content[key], {k: v for k, v in content.items() if k != key}
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors (found {type(weights).__name__}).")
    return CheckpointContents({k.removeprefix("module."): v for k, v in weights.items()}, metadata)


def checkpoint_num_classes(state_dict: StateDict) -> Optional[int]:
    """Number of classes of the checkpoint's classifier head, or None when it has none."""
    weight = state_dict.get(_HEAD_KEYS[0])
    return None if weight is None else weight.shape[0]


def interpolate_pos_embed(pos_embed: torch.Tensor, old_grid: List[int], new_grid: List[int]) -> torch.Tensor:
    """Resize a [1, prod(grid), C] position embedding from ``old_grid`` to ``new_grid`` (1-D: linear,
    2-D: bicubic), as done when a model runs at another size than its checkpoint."""
    channels = pos_embed.shape[-1]
    # [1, N, C] -> [1, C, *grid]
    grid = pos_embed.reshape(1, *old_grid, channels).movedim(-1, 1).float()
    mode = "linear" if len(old_grid) == 1 else "bicubic"
    grid = F.interpolate(grid, size=tuple(new_grid), mode=mode, align_corners=False)
    return grid.movedim(1, -1).reshape(1, -1, channels).to(pos_embed.dtype)


def _pos_embed_grids(model: nn.Module, key: str, tokens: int) -> Optional[tuple]:
    """(old grid, new grid) for a position-embedding key whose token count differs from the model's."""
    shape = list(model.tokens_spatial_shape)
    if key == "pos_embed_temporal":
        return [tokens], shape[:1]
    new = shape[1:] if key == "pos_embed_spatial" else shape
    side = round(tokens ** (1 / len(new)))
    if side ** len(new) != tokens:
        return None
    return [side] * len(new), new


def adapt_state_dict(state_dict: StateDict, model: nn.Module, source: str = "checkpoint") -> tuple:
    """Make a checkpoint's state dict fit ``model``: returns (state dict, re-initialized keys: those of a
    classifier head of another size, left out).

    Raises ``CheckpointError`` listing every parameter whose shape cannot be made to fit.
    """
    own = model.state_dict()
    adapted, reinitialized, mismatched = {}, [], []
    for key, value in state_dict.items():
        if key not in own and key.startswith(_MAE_ONLY_PREFIXES) and "decoder_pos_embed" not in own:
            continue  # an MAE checkpoint into a classifier: take the encoder
        target = own.get(key)
        if target is None or target.shape == value.shape:
            adapted[key] = value
        elif key in _HEAD_KEYS:
            reinitialized.append(key)  # fine-tuning to another number of classes: the model's own init
        elif key in ("pos_embed", "pos_embed_spatial", "pos_embed_temporal") and value.dim() == 3:
            grids = _pos_embed_grids(model, key, value.shape[1])
            if grids is None:
                mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(target.shape)}")
            else:
                logger.info("%s: interpolating %s from grid %s to %s.", source, key, *grids)
                adapted[key] = interpolate_pos_embed(value, *grids)
        else:
            mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(target.shape)}")
    if mismatched:
        raise CheckpointError(
            f"{source} does not fit this model ({len(mismatched)} parameters of another shape; is it "
            f"another architecture or size?):\n  " + "\n  ".join(mismatched[:20]))
    return adapted, reinitialized


def load_state_dict_into(model: nn.Module, state_dict: StateDict, source: str = "checkpoint",
                         complete: bool = False) -> LoadResult:
    """Load ``state_dict`` into ``model`` after ``adapt_state_dict``; reports missing and unexpected keys.

    A model weight the checkpoint does not give keeps its initialization with a warning (a classifier head
    of another size too: fine-tuning), unless ``complete``: then it raises IncompleteCheckpointError
    naming them, and the model is left untouched.
    """
    adapted, reinitialized = adapt_state_dict(state_dict, model, source)
    own = model.state_dict()
    if set(own).isdisjoint(adapted):
        raise CheckpointError(f"{source} holds no weights of this model (its first keys: "
                              f"{list(state_dict)[:5]}); is it a Hiera checkpoint? Known layouts: "
                              f"{', '.join(LAYOUT_NAMES.values())}.")
    missing = [key for key in own if key not in adapted and key not in reinitialized]
    head_changes = [f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(own[key].shape)}"
                    for key in reinitialized]
    if complete and (missing or head_changes):
        raise IncompleteCheckpointError(_incomplete_message(source, missing, head_changes))
    for change in head_changes:
        logger.warning("%s: classifier head %s; it is re-initialized (fine-tuning to another number of "
                       "classes).", source, change)
    result = model.load_state_dict(adapted, strict=False)
    if missing:
        logger.warning("%s: %d model parameters not in the checkpoint keep their initialization: %s",
                       source, len(missing), _some(missing))
    if result.unexpected_keys:
        logger.warning("%s: %d checkpoint keys not used by the model: %s", source, len(result.unexpected_keys),
                       _some(result.unexpected_keys))
    return LoadResult(missing, list(result.unexpected_keys), reinitialized)


def _some(keys: List[str], limit: int = 10) -> str:
    """The first ``limit`` keys, comma-separated, with " ..." when there are more."""
    return ", ".join(keys[:limit]) + (" ..." if len(keys) > limit else "")


def _incomplete_message(source: str, missing: List[str], head_changes: List[str]) -> str:
    """Why ``source`` cannot give every weight: the missing parameters and the classifier head of another size."""
    problems = []
    if missing:
        problems.append(f"{len(missing)} model parameters are not in the file ({_some(missing)})")
    if head_changes:
        problems.append("its classifier head has another number of classes (" + "; ".join(head_changes) + ")")
    return (f"{source} does not hold every weight of this model: " + " and ".join(problems)
            + ". Those weights would be random.")


def load_checkpoint(model: nn.Module, path: str | os.PathLike, complete: bool = False) -> LoadResult:
    """Load the weights of ``path`` (any supported format) into ``model``; see the module docstring and
    :func:`load_state_dict_into` for ``complete``."""
    return load_state_dict_into(model, read_checkpoint(path), source=os.fspath(path), complete=complete)
