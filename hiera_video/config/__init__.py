"""Configuration: documented defaults, YAML files with ``_BASE_`` inheritance, command-line overrides.

``load_config("configs/K400/hiera_l.yaml", ["SOLVER.MAX_EPOCH", "10"])`` returns the defaults of
:mod:`hiera_video.config.defaults`, overridden by the YAML file (and the files it names in ``_BASE_``,
relative to itself), then by the ``KEY VALUE`` pairs. Every key is checked against the defaults: an
unknown key or a value of the wrong type is a :class:`ConfigError` naming the key, where it came from
(file and line, or the command line) and the closest valid key.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import os
import sys
from typing import Any, Iterable, Sequence

import yaml
from fvcore.common.config import CfgNode

from .defaults import get_cfg

__all__ = ["CfgNode", "ConfigError", "get_cfg", "load_config", "parse_args", "validate_config"]

BASE_KEY = "_BASE_"
MIXED_PRECISION_MODES = ("", "bf16", "fp16")
# Keys of earlier versions (or of PySlowFast) that are gone, with what to do instead.
REMOVED_KEYS = {
    "NUM_SHARDS": "torchrun sets the number of machines (--nnodes); delete the key.",
    "DATA.INPUT_CHANNEL_NUM": "the models take 3-channel RGB clips; delete the key.",
    "AUG.COLOR_JITTER": "RandAugment (AUG.AA_TYPE) does the color augmentation; delete the key.",
    "AUG.INTERPOLATION": "RandAugment and resizing interpolate bilinearly / bicubically as the official "
                         "recipe does; delete the key.",
    "SOLVER.BASE_LR_SCALE_NUM_SHARDS": "in PySlowFast it multiplies the lr by NUM_SHARDS; here it scaled "
                                       "SOLVER.BASE_LR by TRAIN.BATCH_SIZE / 256. Use SOLVER.BASE_LR_SCALE_BATCH "
                                       "True for that (the MAE 'blr' rule), or False for a fixed lr.",
}


class ConfigError(ValueError):
    """A configuration file or override names an unknown key, has a wrong type or an invalid value."""


def _flat_keys(node: CfgNode, prefix: str = "") -> list[str]:
    """All leaf keys of ``node`` as dotted names (``TRAIN.BATCH_SIZE``)."""
    keys = []
    for name, value in node.items():
        full = f"{prefix}{name}"
        keys.extend(_flat_keys(value, full + ".") if isinstance(value, CfgNode) else [full])
    return keys


def _closest_key_hint(full_key: str, defaults: CfgNode) -> str:
    """`` Did you mean 'X'?`` for the valid key nearest to ``full_key``, or a pointer to the defaults."""
    candidates = _flat_keys(defaults) + [k for k, v in defaults.items() if isinstance(v, CfgNode)]
    close = difflib.get_close_matches(full_key.upper(), candidates, n=1, cutoff=0.6)
    if close:
        return f" Did you mean '{close[0]}'?"
    return " See hiera_video/config/defaults.py for the valid keys."


def _type_name(value: Any) -> str:
    return type(value).__name__


def _coerce(full_key: str, value: Any, default: Any, where: str) -> Any:
    """Return ``value`` converted to the type of ``default``, or raise a ConfigError naming the key.

    Allowed conversions: int -> float, tuple <-> list (elements checked against the default's first
    element when the default list is not empty). A bool never stands for a number, nor a number for a bool.
    """

    def mismatch() -> ConfigError:
        return ConfigError(
            f"{where}: {full_key} must be {_type_name(default)} like the default {default!r}, "
            f"got {_type_name(value)} {value!r}."
        )

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise mismatch()
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise mismatch()
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise mismatch()
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise mismatch()
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise mismatch()
        if default:
            return [_coerce(f"{full_key}[{i}]", item, default[0], where) for i, item in enumerate(value)]
        return list(value)
    if default is None:
        return value
    raise mismatch()


def _check_and_convert(
    overrides: dict, defaults: CfgNode, where: str, line_of: dict[str, int] | None = None, prefix: str = ""
) -> dict:
    """Validate a nested dict of overrides against ``defaults``; return it with values coerced."""
    checked = {}
    for name, value in overrides.items():
        full_key = f"{prefix}{name}"
        location = f"{where}, line {line_of[full_key]}" if line_of and full_key in line_of else where
        if name not in defaults:
            if full_key in REMOVED_KEYS:
                raise ConfigError(f"{location}: config key '{full_key}' was removed: {REMOVED_KEYS[full_key]}")
            raise ConfigError(
                f"{location}: unknown config key '{full_key}'.{_closest_key_hint(full_key, get_cfg())}"
            )
        default = defaults[name]
        if isinstance(default, CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{location}: {full_key} is a group of keys; give a mapping, not {value!r}.")
            checked[name] = _check_and_convert(value, default, where, line_of, full_key + ".")
        else:
            checked[name] = _coerce(full_key, value, default, location)
    return checked


def _key_lines(path: str) -> dict[str, int]:
    """Map each dotted key of a YAML mapping file to its 1-based line number (for error messages)."""
    with open(path, encoding="utf-8") as f:
        root = yaml.compose(f)
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key_node, value_node in node.value:
            full_key = f"{prefix}{key_node.value}"
            lines[full_key] = key_node.start_mark.line + 1
            walk(value_node, full_key + ".")

    if root is not None:
        walk(root, "")
    return lines


def _merge_dicts(src: dict, dst: dict) -> None:
    """Recursively merge ``src`` into ``dst`` (values of ``src`` win)."""
    for name, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(name), dict):
            _merge_dicts(value, dst[name])
        else:
            dst[name] = value


def _load_yaml_with_base(path: str, defaults: CfgNode, seen: tuple[str, ...] = ()) -> dict:
    """Read a YAML config, its ``_BASE_`` files first (paths relative to the file), validated per file."""
    path = os.path.abspath(os.path.expanduser(path))
    if path in seen:
        raise ConfigError(f"{path}: _BASE_ inheritance loops back to this file ({' -> '.join(seen)}).")
    if not os.path.isfile(path):
        where = f" (named in _BASE_ of {seen[-1]})" if seen else ""
        raise ConfigError(f"Config file not found: {path}{where}. Check the path.")
    try:
        with open(path, encoding="utf-8") as f:
            content = yaml.safe_load(f)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the file "
                          "as UTF-8.") from None
    if content is None:  # a file cut short while being written reads as empty: never run on defaults silently
        raise ConfigError(f"{path}: the file is empty (or only comments); a config needs at least one KEY: value "
                          "(write `{}` to run on the defaults on purpose).")
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of KEY: value, got {type(content).__name__}.")
    bases = content.pop(BASE_KEY, [])
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        base_path = base if os.path.isabs(os.path.expanduser(base)) else os.path.join(os.path.dirname(path), base)
        _merge_dicts(_load_yaml_with_base(base_path, defaults, seen + (path,)), merged)
    _merge_dicts(_check_and_convert(content, defaults, path, _key_lines(path)), merged)
    return merged


def _apply(checked: dict, cfg: CfgNode) -> None:
    """Write already validated and coerced values into ``cfg`` (no further string decoding)."""
    for name, value in checked.items():
        if isinstance(value, dict):
            _apply(value, cfg[name])
        else:
            cfg[name] = value


def _decode_cli_value(text: str) -> Any:
    """Parse a command-line value as a Python literal (numbers, bools, lists); anything else is a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _opts_to_dict(opts: Sequence[str]) -> dict:
    """Turn ``["A.B", "1", "C", "x"]`` into ``{"A": {"B": 1}, "C": "x"}``."""
    if len(opts) % 2:
        raise ConfigError(
            f"Command-line overrides come in KEY VALUE pairs; got an odd number ({len(opts)}): {list(opts)}."
        )
    nested: dict = {}
    for full_key, text in zip(opts[0::2], opts[1::2]):
        *groups, leaf = full_key.split(".")
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
            if not isinstance(node, dict):
                raise ConfigError(f"command line: {full_key} overrides a key given twice in different forms.")
        node[leaf] = _decode_cli_value(text)
    return nested


def _cli_value_for_string_keys(overrides: dict, defaults: CfgNode) -> dict:
    """Keep command-line values as strings where the default is a string (``OUTPUT_DIR 123`` is a path)."""
    result = {}
    for name, value in overrides.items():
        default = defaults.get(name) if isinstance(defaults, CfgNode) else None
        if isinstance(value, dict) and isinstance(default, CfgNode):
            result[name] = _cli_value_for_string_keys(value, default)
        elif isinstance(default, str) and not isinstance(value, str):
            result[name] = str(value)
        else:
            result[name] = value
    return result


def validate_config(cfg: CfgNode) -> None:
    """Check values that are valid types but invalid choices or combinations; raise ConfigError."""
    from hiera_video.engine.tasks import task_class, task_names

    if cfg.TASK not in task_names():
        raise ConfigError(f"TASK must be one of {task_names()}, got '{cfg.TASK}'.")
    if cfg.TRAIN.MIXED_PRECISION not in MIXED_PRECISION_MODES:
        raise ConfigError(
            f"TRAIN.MIXED_PRECISION must be one of {MIXED_PRECISION_MODES}, got '{cfg.TRAIN.MIXED_PRECISION}'."
        )
    if cfg.TRAIN.MIXED_PRECISION == "fp16" and cfg.NUM_GPUS == 0:
        raise ConfigError("TRAIN.MIXED_PRECISION fp16 needs a GPU; on CPU (NUM_GPUS 0) use bf16 or ''.")
    for key in ("TRAIN.BATCH_SIZE", "TEST.BATCH_SIZE", "TRAIN.ACCUM_STEPS", "SOLVER.MAX_EPOCH",
                "TEST.NUM_ENSEMBLE_VIEWS", "TEST.NUM_SPATIAL_CROPS", "AUG.NUM_SAMPLE", "DATA.NUM_FRAMES"):
        group, name = key.split(".")
        if cfg[group][name] < 1:
            raise ConfigError(f"{key} must be at least 1, got {cfg[group][name]}.")
    if cfg.NUM_GPUS < 0:
        raise ConfigError(f"NUM_GPUS must be 0 (CPU) or more, got {cfg.NUM_GPUS}.")
    if not 0.0 <= cfg.MAE.MASK_RATIO < 1.0:
        raise ConfigError(f"MAE.MASK_RATIO must be in [0, 1), got {cfg.MAE.MASK_RATIO}.")
    if cfg.TRAIN.CHECKPOINT_PERIOD < 1:
        raise ConfigError(f"TRAIN.CHECKPOINT_PERIOD must be at least 1, got {cfg.TRAIN.CHECKPOINT_PERIOD}.")
    _check_crop_fits_scales(cfg)
    _check_input_fits_model(cfg)
    try:
        task_class(cfg.TASK).check_config(cfg)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_crop_fits_scales(cfg: CfgNode) -> None:
    """Short-side jitter (no DATA.RANDOM_RESIZED_CROP, and always for AVA) must scale to at least the crop."""
    scales = cfg.DATA.TRAIN_JITTER_SCALES
    if len(scales) != 2 or not 0 < scales[0] <= scales[1]:
        raise ConfigError(f"DATA.TRAIN_JITTER_SCALES must be [min, max] short sides with 0 < min <= max, got {scales}.")
    if (not cfg.DATA.RANDOM_RESIZED_CROP or cfg.TASK == "ava") and cfg.DATA.TRAIN_CROP_SIZE > scales[0]:
        raise ConfigError(
            f"DATA.TRAIN_CROP_SIZE {cfg.DATA.TRAIN_CROP_SIZE} is larger than the smallest training scale "
            f"DATA.TRAIN_JITTER_SCALES[0] {scales[0]}: raise the scales or lower the crop."
        )


def _check_input_fits_model(cfg: CfgNode) -> None:
    """MODEL.MODEL_NAME must exist, and DATA.NUM_FRAMES / DATA.TRAIN_CROP_SIZE must be multiples of what
    its patch stride, mask units and pooling (with HIERA.* overrides) need."""
    from hiera_video.models.hiera import required_input_multiples
    from hiera_video.models.registry import model_architecture

    try:
        _, architecture = model_architecture(cfg.MODEL.MODEL_NAME)
    except ValueError as error:
        raise ConfigError(f"MODEL.MODEL_NAME: {error}") from None
    if len(architecture.get("patch_stride", ())) != 3:
        return  # image models: the model itself explains a video input it cannot take
    hiera = cfg.HIERA
    stages = hiera.STAGES or architecture.get("stages", ())
    multiples = required_input_multiples(hiera.PATCH_STRIDE or architecture["patch_stride"],
                                         hiera.MASK_UNIT_SIZE or architecture["mask_unit_size"],
                                         hiera.Q_STRIDE or architecture["q_stride"], len(stages))
    for key, size, multiple in (("DATA.NUM_FRAMES", cfg.DATA.NUM_FRAMES, multiples[0]),
                                ("DATA.TRAIN_CROP_SIZE", cfg.DATA.TRAIN_CROP_SIZE, multiples[1])):
        if size % multiple:
            raise ConfigError(
                f"{key} {size} must be a multiple of {multiple} for {cfg.MODEL.MODEL_NAME} (patch stride x "
                "max(mask unit size, q_stride ^ (stages - 1)), with the HIERA.* overrides)."
            )


def load_config(cfg_file: str | None = None, opts: Iterable[str] = ()) -> CfgNode:
    """Build the configuration: defaults, then ``cfg_file`` (with ``_BASE_``), then ``KEY VALUE`` pairs.

    Raises ConfigError (naming the key, where it was given and the closest valid key) on unknown keys,
    wrong types and invalid values.
    """
    cfg = get_cfg()
    if cfg_file:
        _apply(_load_yaml_with_base(cfg_file, cfg), cfg)
    opts = list(opts or [])
    if opts:
        overrides = _cli_value_for_string_keys(_opts_to_dict(opts), cfg)
        _apply(_check_and_convert(overrides, cfg, "command line"), cfg)
    validate_config(cfg)
    return cfg


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``run_net.py`` arguments: ``--cfg FILE [--opts] KEY VALUE ...`` (trailing pairs or after --opts).

    Returns a namespace with ``cfg_file`` (str or None), ``opts`` (list of str) and ``demo`` (bool).
    """
    parser = argparse.ArgumentParser(
        description="Train and test Hiera video models.",
        epilog="Example: python tools/run_net.py --cfg configs/K400/hiera_l.yaml NUM_GPUS 1 OUTPUT_DIR out/",
    )
    parser.add_argument("--cfg", dest="cfg_file", default=None, help="YAML config file (may use _BASE_).")
    parser.add_argument(
        "--demo", action="store_true",
        help="Generate a synthetic motion dataset and run MAE pretraining, fine-tuning and 3x5 testing of a "
        "tiny Hiera on CPU (needs no download). Overrides apply to every stage (e.g. OUTPUT_DIR).",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides.")
    argv = list(sys.argv[1:] if argv is None else argv)
    # PySlowFast's newer CLI puts overrides after --opts; its older one takes them trailing. Accept both.
    before, after = (argv[: argv.index("--opts")], argv[argv.index("--opts") + 1:]) if "--opts" in argv else (argv, [])
    args = parser.parse_args(before)
    args.opts = list(args.opts) + after
    if not args.cfg_file and not args.demo:
        parser.error("give a config with --cfg FILE (or run the built-in demo with --demo)")
    return args
