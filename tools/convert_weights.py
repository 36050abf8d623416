"""Write Hiera weights in the official, timm or HF transformers layout.

    python tools/convert_weights.py CHECKPOINT --to official|timm|hf --output OUT [--model NAME] [--opts KEY VALUE ...]

CHECKPOINT is any file or hub folder the toolkit loads (official, timm or transformers layout, toolkit
checkpoint, state dict, safetensors). OUT ending in ``.safetensors`` gets a safetensors file, in ``.pth``,
``.pt`` or ``.bin`` a ``torch.save`` state dict; any other OUT is a hub folder (``model.safetensors`` and
``config.json`` in the layout's own config format), whose architecture comes from ``--model`` or the config a
toolkit checkpoint carries, with ``--opts`` overrides (``HIERA.EMBED_DIM 16``, ``DATA.TRAIN_CROP_SIZE 64``, ...);
MAE weights go to files only. transformers' Hiera is image-only: ``--to hf`` takes image models.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from hiera_video.models.checkpoint import (  # noqa: E402
    checkpoint_num_classes, load_state_dict_into, read_checkpoint_contents,
)
from hiera_video.models.layouts import (  # noqa: E402
    LAYOUT_NAMES, LAYOUTS, LayoutError, convert_layout, hub_config, write_hub_folder,
)
from hiera_video.utils.errors import UserError, run_cli  # noqa: E402

_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


class ConvertInputError(UserError, ValueError):
    """Arguments that cannot give the asked output (a hub folder without an architecture)."""


def main(argv=None) -> int:
    """Read the checkpoint, convert its weights and write them as a file or a hub folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint file or hub folder, in any layout")
    parser.add_argument("--to", required=True, choices=LAYOUTS, help="layout to write")
    parser.add_argument("--output", required=True, help=".safetensors / .pth / .bin file, or a folder")
    parser.add_argument("--model", help="model name (e.g. hiera_base_224); a hub folder needs it unless the "
                                        "checkpoint carries its config")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides of the architecture (HIERA.*, DATA.NUM_FRAMES, DATA.*_CROP_SIZE)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = parser.parse_args(argv)
    if len(args.opts) % 2:
        parser.error(f"--opts takes KEY VALUE pairs, got {len(args.opts)} words")

    contents = read_checkpoint_contents(args.checkpoint)
    if args.output.endswith(_FILE_SUFFIXES):
        weights = _convert(contents.state_dict, args.to, args.checkpoint)
        _write_file(weights, args.output)
    elif "mask_token" in contents.state_dict:
        raise ConvertInputError(f"{args.checkpoint} holds MAE pretraining weights: hub folders are written for "
                                "classifiers and backbones; give an output file (.safetensors, .pth) instead.")
    else:
        name, model, architecture = _architecture(args.model, args.opts, contents, args.checkpoint)
        load_state_dict_into(model, contents.state_dict, source=args.checkpoint)  # the weights fit the model
        weights = _convert(contents.state_dict, args.to, args.checkpoint, depths=architecture["stages"])
        num_classes = checkpoint_num_classes(contents.state_dict) or 0  # 0: a backbone without head
        config = hub_config(args.to, architecture, name, num_classes, model.pretrained_cfg)
        write_hub_folder(args.output, weights, config)
    print(f"wrote {args.output}: {len(weights)} tensors in the {LAYOUT_NAMES[args.to]} layout")
    return 0


def _convert(state_dict: dict, layout: str, checkpoint: str, depths=None) -> dict:
    """:func:`convert_layout`, its errors naming ``checkpoint``."""
    try:
        return convert_layout(state_dict, layout, depths)
    except LayoutError as error:
        raise LayoutError(f"cannot convert {checkpoint}: {error}") from None


def _write_file(weights: dict, path: str) -> None:
    """``weights`` as safetensors or a ``torch.save`` state dict, by the suffix of ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".safetensors"):
        save_file({key: value.contiguous() for key, value in weights.items()}, path)
    else:
        torch.save(weights, path)


def _architecture(model_name, opts, contents, checkpoint: str):
    """(registered name, model, every constructor argument) from ``--model`` or the checkpoint's config, with
    the ``KEY VALUE`` overrides ``opts`` (HIERA.*, DATA.NUM_FRAMES, DATA.*_CROP_SIZE)."""
    from hiera_video.config import load_config
    from hiera_video.engine.tasks.base import model_input_size, named_architecture
    from hiera_video.inference.loading import config_from_yaml_text
    from hiera_video.models import create_model

    if model_name is not None:
        cfg = load_config(None, ["MODEL.MODEL_NAME", model_name, *opts])
    elif contents.cfg_yaml is not None:
        cfg = config_from_yaml_text(contents.cfg_yaml, checkpoint, opts)
    else:
        raise ConvertInputError(f"{checkpoint} carries no config: give the model name (--model hiera_base_224, "
                                "...) to write a hub folder, or an output file (.safetensors, .pth).")
    name = cfg.MODEL.MODEL_NAME
    architecture = {**named_architecture(cfg, name), "input_size": model_input_size(cfg)}
    architecture["num_classes"] = checkpoint_num_classes(contents.state_dict) or architecture["num_classes"]
    return name, create_model(name, **architecture), architecture


if __name__ == "__main__":
    sys.exit(run_cli(main))
