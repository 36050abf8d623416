"""Build a ready-to-run classifier (model, config, class names) from a checkpoint.

A toolkit checkpoint (``OUTPUT_DIR/checkpoints/checkpoint_epoch_*.pyth``) carries its config (YAML text)
and class names, so the file alone is enough. An official Hiera checkpoint, a plain state dict or a
safetensors file carries neither: give a config (``cfg_file``) or a model name (``model_name``, input size
from the named model) and a class-name file (:func:`hiera_video.datasets.list_files.read_class_names`). The
number of classes always comes from the checkpoint's head.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from fvcore.common.config import CfgNode

from hiera_video.config import ConfigError, load_config
from hiera_video.datasets.list_files import read_class_names
from hiera_video.models.checkpoint import (
    CheckpointContents, CheckpointError, IncompleteCheckpointError, checkpoint_num_classes, load_state_dict_into,
    read_checkpoint_contents,
)
from hiera_video.models.registry import list_models, model_architecture


@dataclass
class LoadedClassifier:
    """A classifier in eval mode with the config it was trained with and its class names."""

    model: torch.nn.Module
    cfg: CfgNode
    class_names: list[str]
    checkpoint: str


def config_from_yaml_text(text: str, source: str, opts: Sequence[str] = ()) -> CfgNode:
    """The config a checkpoint was trained with, validated like a config file (``load_config``)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "checkpoint_cfg.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            return load_config(path, opts)
        except ConfigError as error:
            message = str(error).replace(path, f"the config stored in {source}")
            raise ConfigError(f"{message}\nGive the config to use with --cfg FILE.") from None


def config_for_model_name(name: str, opts: Sequence[str] = ()) -> CfgNode:
    """Default config for the named video model, its input size (frames, crop) from the registry, then
    the ``KEY VALUE`` overrides ``opts``."""
    _, architecture = model_architecture(name)
    input_size = tuple(architecture.get("input_size", ()))
    if len(input_size) != 3:
        video_models = [model for model in list_models() if "16x" in model and not model.startswith("mae_")]
        raise ValueError(f"{name} is an image model; predict takes a video classifier: {', '.join(video_models)}")
    frames, height, _ = (str(size) for size in input_size)
    model_keys = ["MODEL.MODEL_NAME", name, "DATA.NUM_FRAMES", frames, "DATA.TRAIN_CROP_SIZE", height,
                  "DATA.TEST_CROP_SIZE", height]
    return load_config(None, model_keys + list(opts))


def _choose_config(checkpoint: str, contents: CheckpointContents, cfg_file: Optional[str],
                   model_name: Optional[str], opts: Sequence[str]) -> CfgNode:
    if cfg_file:
        cfg = load_config(cfg_file, opts)
    elif contents.cfg_yaml is not None:
        cfg = config_from_yaml_text(contents.cfg_yaml, checkpoint, opts)
    elif model_name:
        cfg = config_for_model_name(model_name, opts)
    else:
        raise ValueError(
            f"{checkpoint} carries no config (an official Hiera checkpoint or a plain state dict?): give the "
            "config it was trained with (--cfg FILE) or the model name (--model hiera_base_16x224, ...) and "
            "--labels FILE."
        )
    if model_name and (cfg_file or contents.cfg_yaml is not None):
        cfg.MODEL.MODEL_NAME = model_name
    if cfg.TASK != "classification":
        raise ValueError(f"{checkpoint}: its config has TASK '{cfg.TASK}'; predict needs a classification "
                         "checkpoint (fine-tune an MAE checkpoint first).")
    return cfg


def _choose_class_names(checkpoint: str, contents: CheckpointContents, labels_file: Optional[str],
                        num_classes: int) -> list[str]:
    if labels_file:
        names, source = read_class_names(labels_file), labels_file
    elif contents.class_names is not None:
        names, source = contents.class_names, checkpoint
    else:
        raise ValueError(f"{checkpoint} carries no class names: give --labels FILE (one class name per line, "
                         f"or JSON), the names of its {num_classes} classes in index order.")
    if len(names) != num_classes:
        raise ValueError(f"{source} names {len(names)} classes but the checkpoint's head has {num_classes}; "
                         "give the label file of this checkpoint (--labels FILE).")
    return names


def load_classifier(checkpoint: str | os.PathLike, cfg_file: Optional[str] = None, model_name: Optional[str] = None,
                    labels_file: Optional[str] = None, opts: Sequence[str] = ()) -> LoadedClassifier:
    """Read ``checkpoint``, build its model and load every weight (see the module docstring).

    ``opts`` are ``KEY VALUE`` config overrides (e.g. ``["DATA.TEST_CROP_SIZE", "256"]``). Raises
    IncompleteCheckpointError when a model weight is missing from the checkpoint (a half-loaded classifier
    predicts nonsense), NonFiniteWeightsError when its weights hold NaN or infinity.
    """
    checkpoint = os.fspath(checkpoint)
    contents = read_checkpoint_contents(checkpoint)  # the one read of the file: weights, config, class names
    num_classes = checkpoint_num_classes(contents.state_dict)
    if num_classes is None:
        raise CheckpointError(f"{checkpoint} has no classifier head (head.projection.*): is it an MAE "
                              "pretraining checkpoint? Fine-tune it for classification first.")
    cfg = _choose_config(checkpoint, contents, cfg_file, model_name, opts)
    cfg.MODEL.NUM_CLASSES = num_classes
    class_names = _choose_class_names(checkpoint, contents, labels_file, num_classes)

    from hiera_video.engine.tasks import get_task

    model = get_task(cfg).build_model()
    try:
        load_state_dict_into(model, contents.state_dict, source=checkpoint, complete=True)
    except IncompleteCheckpointError as error:
        raise IncompleteCheckpointError(f"{error} Is the config (--cfg) or --model {cfg.MODEL.MODEL_NAME} the "
                                        "one it was trained with?") from None
    return LoadedClassifier(model.eval(), cfg, class_names, checkpoint)
