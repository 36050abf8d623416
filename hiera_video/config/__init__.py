"""Configuration: documented defaults, YAML files with ``_BASE_`` inheritance, command-line overrides.

``load_config("configs/K400/hiera_l.yaml", ["SOLVER.MAX_EPOCH", "10"])`` returns the defaults of
:mod:`hiera_video.config.defaults`, overridden by the YAML file (and the files it names in ``_BASE_``,
relative to itself), then by the ``KEY VALUE`` pairs. Every key is checked against the defaults: an
unknown key or a value of the wrong type is a :class:`ConfigError` naming the key, where it came from
(file and line, or the command line) and the closest valid key. Every value is then checked against its
key's declared range (:data:`hiera_video.config.ranges.KEY_RANGES`), and keys that must agree together.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import functools
import os
import reprlib
import sys
from typing import Any, Iterable, Mapping, Optional, Sequence

import yaml
from fvcore.common.config import CfgNode

from hiera_video.utils.errors import UserError

from .defaults import get_cfg
from .ranges import KEY_RANGES

__all__ = ["CfgNode", "ConfigError", "get_cfg", "load_config", "parse_args", "validate_config"]

BASE_KEY = "_BASE_"
# A config has a few hundred YAML nodes; aliases of aliases can expand a short file to millions ("billion
# laughs"), so a file is refused past this many nodes with its aliases expanded.
MAX_YAML_NODES = 10_000
# Values in error messages: long strings and big lists cut short.
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 80, 80, 8, 8, 3
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


class ConfigError(UserError, ValueError):
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


def _short_repr(value: Any) -> str:
    """``repr(value)``, cut short for a long string or a big nested list (error messages stay one line)."""
    return _SHORT.repr(value)


def _coerce(full_key: str, value: Any, default: Any, where: str) -> Any:
    """Return ``value`` converted to the type of ``default``, or raise a ConfigError naming the key.

    Allowed conversions: int -> float, tuple <-> list (elements checked against the default's first
    element when the default list is not empty). A bool never stands for a number, nor a number for a bool.
    """

    def mismatch() -> ConfigError:
        return ConfigError(
            f"{where}: {full_key} must be {_type_name(default)} like the default {default!r}, "
            f"got {_type_name(value)} {_short_repr(value)}."
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
    overrides: dict, defaults: CfgNode, where: str, origins: dict[str, str], line_of: dict[str, int] | None = None,
    prefix: str = "",
) -> dict:
    """Validate a nested dict of overrides against ``defaults``; return it with values coerced.

    ``origins`` gets, for each leaf key given, where it was given (``file, line N`` or ``where``).
    """
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
                raise ConfigError(
                    f"{location}: {full_key} is a group of keys; give a mapping, not {_short_repr(value)}.")
            checked[name] = _check_and_convert(value, default, where, origins, line_of, full_key + ".")
        else:
            checked[name] = _coerce(full_key, value, default, location)
            origins[full_key] = location
    return checked


def _check_expansion(root: yaml.Node, path: str) -> None:
    """Refuse a document that has more than MAX_YAML_NODES nodes with its aliases expanded, or an alias
    inside what it names; linear in the file's size (each anchored node is counted once)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise ConfigError(f"{path}, line {node.start_mark.line + 1}: an alias refers to the value that "
                              "contains it (a recursive alias); a config cannot hold one.")
        open_nodes.add(id(node))
        children = node.value if isinstance(node, yaml.CollectionNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in children for part in pair]
        total = 1 + sum(size(child) for child in children)
        open_nodes.discard(id(node))
        if total > MAX_YAML_NODES:
            raise ConfigError(f"{path}, line {node.start_mark.line + 1}: this value expands to more than "
                              f"{MAX_YAML_NODES} YAML nodes through aliases (a config has a few hundred); "
                              "write the values out instead of nesting aliases.")
        sizes[id(node)] = total
        return total

    size(root)


def _key_lines(root: yaml.Node, path: str) -> dict[str, int]:
    """Map each dotted key of a composed YAML mapping to its 1-based line; a key given twice in one
    mapping is a ConfigError naming both lines (YAML would keep the last value silently)."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        first_line: dict[tuple, int] = {}
        for key_node, value_node in node.value:
            full_key = f"{prefix}{key_node.value}"
            line = key_node.start_mark.line + 1
            key = (key_node.tag, str(key_node.value))
            if key in first_line:
                raise ConfigError(f"{path}, lines {first_line[key]} and {line}: key '{full_key}' is given twice; "
                                  "YAML would silently keep the last value. Delete one.")
            first_line[key] = lines[full_key] = line
            walk(value_node, full_key + ".")

    walk(root, "")
    return lines


def _parse_yaml(path: str) -> tuple[Any, dict[str, int]]:
    """Parse a YAML file once: its content and the line of each dotted key, after refusing alias bombs
    and duplicate keys. Raises ConfigError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            loader = yaml.SafeLoader(f)
            try:
                root = loader.get_single_node()
                if root is None:
                    return None, {}
                _check_expansion(root, path)
                lines = _key_lines(root, path)
                return loader.construct_document(root), lines
            finally:
                loader.dispose()
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the file "
                          "as UTF-8.") from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML nests too deeply to read; a config is KEY: value pairs in "
                          "groups.") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror}).") from None


def _merge_dicts(src: dict, dst: dict) -> None:
    """Recursively merge ``src`` into ``dst`` (values of ``src`` win)."""
    for name, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(name), dict):
            _merge_dicts(value, dst[name])
        else:
            dst[name] = value


def _read_config_file(path: str) -> tuple[dict, dict[str, int]]:
    """The mapping of a YAML config file and the line of each dotted key; ConfigError naming the file."""
    content, lines = _parse_yaml(path)
    if content is None:  # a file cut short while being written reads as empty: never run on defaults silently
        raise ConfigError(f"{path}: the file is empty (or only comments); a config needs at least one KEY: value "
                          "(write `{}` to run on the defaults on purpose).")
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of KEY: value, got {type(content).__name__}.")
    return content, lines


def _base_paths(bases: Any, path: str, lines: dict[str, int]) -> list[str]:
    """The files named by ``_BASE_`` (a path or a list of paths) in ``path``, relative to its folder."""
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(base, str) for base in bases):
        raise ConfigError(f"{path}, line {lines.get(BASE_KEY)}: {BASE_KEY} must be a config file path or a list "
                          f"of them (relative to this file), got {_short_repr(bases)}.")
    folder = os.path.dirname(path)
    return [base if os.path.isabs(os.path.expanduser(base)) else os.path.join(folder, base) for base in bases]


def _load_yaml_with_base(path: str, defaults: CfgNode, origins: dict[str, str], seen: tuple[str, ...] = ()) -> dict:
    """Read a YAML config, its ``_BASE_`` files first (paths relative to the file), validated per file;
    ``origins`` gets the ``file, line N`` of each key, the later files' overriding the earlier ones'."""
    path = os.path.abspath(os.path.expanduser(path))
    if path in seen:
        raise ConfigError(f"{path}: _BASE_ inheritance loops back to this file ({' -> '.join(seen)}).")
    if not os.path.isfile(path):
        where = f" (named in _BASE_ of {seen[-1]})" if seen else ""
        raise ConfigError(f"Config file not found: {path}{where}. Check the path.")
    content, lines = _read_config_file(path)
    merged: dict = {}
    for base_path in _base_paths(content.pop(BASE_KEY, []), path, lines):
        _merge_dicts(_load_yaml_with_base(base_path, defaults, origins, seen + (path,)), merged)
    _merge_dicts(_check_and_convert(content, defaults, path, origins, lines), merged)
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


def _value(cfg: CfgNode, key: str) -> Any:
    """The value of dotted ``key`` (``DATA.MEAN``) in ``cfg``."""
    return functools.reduce(lambda node, name: node[name], key.split("."), cfg)


def _check_ranges(cfg: CfgNode, origins: Mapping[str, str]) -> None:
    """Every key's value against its declaration in :data:`hiera_video.config.ranges.KEY_RANGES`."""
    for key in _flat_keys(cfg):
        value, allowed = _value(cfg, key), KEY_RANGES[key]
        if not allowed.allows(value):
            where = f"{origins[key]}: " if key in origins else ""
            raise ConfigError(f"{where}{key} must be {allowed.explain()}, got {_short_repr(value)}."
                              f"{allowed.hint(value)}")


def validate_config(cfg: CfgNode, origins: Optional[Mapping[str, str]] = None) -> None:
    """Check every key against its declared range, then the rules between keys and the task's own; raise
    ConfigError. ``origins`` maps dotted keys to where they were set (``file, line N``, ``command line``)."""
    from hiera_video.engine.tasks import task_class

    _check_ranges(cfg, origins or {})
    if cfg.TRAIN.MIXED_PRECISION == "fp16" and cfg.NUM_GPUS == 0:
        raise ConfigError("TRAIN.MIXED_PRECISION fp16 needs a GPU; on CPU (NUM_GPUS 0) use bf16 or ''.")
    if cfg.MIXUP.ENABLE and cfg.MIXUP.ALPHA == 0 and cfg.MIXUP.CUTMIX_ALPHA == 0:
        raise ConfigError("MIXUP.ENABLE is True but MIXUP.ALPHA and MIXUP.CUTMIX_ALPHA are both 0: make one "
                          "positive, or set MIXUP.ENABLE False.")
    if cfg.MAE.DECODER_EMBED_DIM % cfg.MAE.DECODER_NUM_HEADS:
        raise ConfigError(f"MAE.DECODER_EMBED_DIM {cfg.MAE.DECODER_EMBED_DIM} must be a multiple of "
                          f"MAE.DECODER_NUM_HEADS {cfg.MAE.DECODER_NUM_HEADS} (each head takes an equal share).")
    _check_crop_fits_scales(cfg)
    architecture = _model_architecture(cfg)
    _check_hiera_overrides(architecture)
    _check_input_fits_model(cfg, architecture)
    if cfg.TEST.COMPILE and not task_class(cfg.TASK).compiles_for_testing:
        raise ConfigError(f"TEST.COMPILE: TASK {cfg.TASK} does not support it (testing compiles the classifier "
                          "of TASK classification only): set TEST.COMPILE False.")
    try:
        task_class(cfg.TASK).check_config(cfg)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_crop_fits_scales(cfg: CfgNode) -> None:
    """Short-side jitter (no DATA.RANDOM_RESIZED_CROP, and always for AVA) must scale to at least the crop."""
    smallest = cfg.DATA.TRAIN_JITTER_SCALES[0]
    if (not cfg.DATA.RANDOM_RESIZED_CROP or cfg.TASK == "ava") and cfg.DATA.TRAIN_CROP_SIZE > smallest:
        raise ConfigError(
            f"DATA.TRAIN_CROP_SIZE {cfg.DATA.TRAIN_CROP_SIZE} is larger than the smallest training scale "
            f"DATA.TRAIN_JITTER_SCALES[0] {smallest}: raise the scales or lower the crop."
        )


def _model_architecture(cfg: CfgNode) -> dict:
    """Constructor arguments of the Hiera the task builds: Hiera's defaults, the named model's (``mae_`` +
    MODEL.MODEL_NAME for TASK mae, as that task builds), then the HIERA.* overrides."""
    from hiera_video.engine.tasks.base import named_architecture

    name = cfg.MODEL.MODEL_NAME
    if cfg.TASK == "mae" and not name.startswith("mae_"):
        name = f"mae_{name}"
    return named_architecture(cfg, name)


def _check_hiera_overrides(architecture: dict) -> None:
    """HIERA.* overrides must fit the named model's other values: one attention flag per stage, pooling
    within the stages, a width the heads divide."""
    stages, heads, width = architecture["stages"], architecture["num_heads"], architecture["embed_dim"]
    where = "(the named model's value for any HIERA.* key left unset)"
    if len(architecture["mask_unit_attn"]) != len(stages):
        raise ConfigError(f"HIERA.MASK_UNIT_ATTN {list(architecture['mask_unit_attn'])} needs one entry per stage "
                          f"of HIERA.STAGES {list(stages)} {where}.")
    if architecture["q_pool"] >= len(stages):
        raise ConfigError(f"HIERA.Q_POOL {architecture['q_pool']} must be below the number of stages "
                          f"({len(stages)} in HIERA.STAGES {list(stages)}) {where}.")
    if width % heads:
        raise ConfigError(f"HIERA.EMBED_DIM {width} must be a multiple of HIERA.NUM_HEADS {heads} {where}.")


def _check_input_fits_model(cfg: CfgNode, architecture: dict) -> None:
    """DATA.NUM_FRAMES / DATA.TRAIN_CROP_SIZE must be multiples of what the model's patch stride, mask
    units and pooling (with HIERA.* overrides) need."""
    from hiera_video.models.hiera import required_input_multiples

    if len(architecture["patch_stride"]) != 3:
        return  # image models: the model itself explains a video input it cannot take
    multiples = required_input_multiples(architecture["patch_stride"], architecture["mask_unit_size"],
                                         architecture["q_stride"], len(architecture["stages"]))
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
    wrong types, values outside the key's declared range (:mod:`hiera_video.config.ranges`) and invalid
    combinations; on a YAML file with a key given twice or aliases that expand past MAX_YAML_NODES.
    """
    cfg = get_cfg()
    origins: dict[str, str] = {}
    if cfg_file:
        _apply(_load_yaml_with_base(cfg_file, cfg, origins), cfg)
    opts = list(opts or [])
    if opts:
        overrides = _cli_value_for_string_keys(_opts_to_dict(opts), cfg)
        _apply(_check_and_convert(overrides, cfg, "command line", origins), cfg)
    validate_config(cfg, origins)
    return cfg


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``run_net.py`` arguments: ``--cfg FILE [--opts] KEY VALUE ...`` (trailing pairs or after --opts).

    Returns a namespace with ``cfg_file`` (str or None), ``opts`` (list of str), ``demo`` and ``debug``
    (bool; ``--debug`` may stand anywhere).
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
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also with HIERA_VIDEO_DEBUG=1)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", dest="opts_after",
                        help="config overrides after --opts (PySlowFast's form; trailing pairs work too)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides.")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    # PySlowFast's newer CLI puts overrides after --opts; its older one takes them trailing. Accept both.
    before, after = (argv[: argv.index("--opts")], argv[argv.index("--opts") + 1:]) if "--opts" in argv else (argv, [])
    args = parser.parse_args(before)
    args.opts, args.debug = list(args.opts) + after, debug
    del args.opts_after
    if not args.cfg_file and not args.demo:
        parser.error("give a config with --cfg FILE (or run the built-in demo with --demo)")
    return args
