"""Export a Hiera classifier for deployment: ONNX (for onnxruntime) or ``torch.export``, batch size dynamic.

Both formats take one float32 input ``video`` [B, C, T, H, W] ([B, C, H, W] for image models), already
preprocessed, and return logits [B, num_classes]. The preprocessing the weights expect
(``model.pretrained_cfg``) travels with the file as JSON: ONNX metadata ``preprocessing``, or the
``torch.export`` extra file ``preprocessing.json`` (:func:`read_preprocessing` reads either).
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Callable, Dict, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn

from hiera_video.utils.errors import EnvironmentMismatchError, MissingInputError, UserError

from .checkpoint import CheckpointError, checkpoint_num_classes, load_state_dict_into, read_checkpoint_contents
from .registry import create_model, model_architecture

FORMATS = ("onnx", "torch.export")
INPUT_NAME, OUTPUT_NAME = "video", "logits"
#: Largest batch the exported program accepts (torch.export needs a bound; ONNX has none).
MAX_BATCH = 1024
#: Largest max |exported - eager| of the logits that counts as the same model (times the largest |logit|
#: when that exceeds 1: float32 rounding grows with the logits).
TOLERANCE = 1e-4
ONNX_OPSET = 17


class ExportInputError(UserError, ValueError):
    """A model name, config or checkpoint that cannot be exported as a classifier."""


def load_model_for_export(checkpoint: str, model_name: Optional[str] = None, cfg_file: Optional[str] = None,
                          opts: Sequence[str] = ()) -> nn.Module:
    """The classifier of ``checkpoint`` in eval mode, every weight loaded, with its preprocessing.

    The architecture comes from ``cfg_file`` (with ``KEY VALUE`` overrides ``opts``), else the named model,
    else the config a toolkit checkpoint carries; the number of classes from the checkpoint's head. With a
    config, ``pretrained_cfg`` takes its DATA.* preprocessing.
    """
    contents = read_checkpoint_contents(checkpoint)
    num_classes = checkpoint_num_classes(contents.state_dict)
    if num_classes is None:
        raise CheckpointError(f"{checkpoint} has no classifier head (head.projection.*): is it an MAE "
                              "pretraining checkpoint? Export a fine-tuned classifier.")
    if cfg_file is None and model_name is not None:
        try:
            model_architecture(model_name)
        except ValueError as error:
            raise ExportInputError(str(error)) from None
        model = create_model(model_name, num_classes=num_classes)
    else:
        model = _model_from_config(checkpoint, contents.cfg_yaml, cfg_file, opts, num_classes)
    load_state_dict_into(model, contents.state_dict, source=checkpoint, complete=True)
    return model.eval()


def _model_from_config(checkpoint: str, cfg_yaml: Optional[str], cfg_file: Optional[str], opts: Sequence[str],
                       num_classes: int) -> nn.Module:
    from hiera_video.config import load_config
    from hiera_video.engine.tasks import get_task
    from hiera_video.inference.loading import config_from_yaml_text

    if cfg_file is not None:
        cfg = load_config(cfg_file, opts)
    elif cfg_yaml is not None:
        cfg = config_from_yaml_text(cfg_yaml, checkpoint, opts)
    else:
        raise ExportInputError(f"{checkpoint} carries no config (an official Hiera checkpoint or a plain state "
                               "dict?): give the model name (--model hiera_base_16x224, ...) or its config (--cfg).")
    if cfg.TASK != "classification":
        raise ExportInputError(f"the config has TASK '{cfg.TASK}'; only classifiers are exported.")
    cfg.MODEL.NUM_CLASSES = num_classes
    model = get_task(cfg).build_model()
    model.pretrained_cfg.update(preprocessing_from_cfg(cfg))
    return model


def preprocessing_from_cfg(cfg) -> Dict[str, object]:
    """The single-view test preprocessing of a config, in ``pretrained_cfg`` keys (see
    :func:`hiera_video.models.registry.default_preprocessing`)."""
    data = cfg.DATA
    return dict(mean=tuple(data.MEAN), std=tuple(data.STD), num_frames=data.NUM_FRAMES,
                sampling_rate=data.SAMPLING_RATE, target_fps=float(data.TARGET_FPS),
                short_side=max(data.TRAIN_JITTER_SCALES[0], data.TEST_CROP_SIZE),
                crop_size=(data.TEST_CROP_SIZE, data.TEST_CROP_SIZE),
                channel_order="BGR" if data.REVERSE_INPUT_CHANNEL else "RGB")


def export_model(model: nn.Module, path: str, fmt: str) -> None:
    """Write ``model`` (eval mode) to ``path`` as ``fmt`` (one of FORMATS), batch dimension dynamic."""
    if fmt not in FORMATS:
        raise ExportInputError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise MissingInputError(f"output folder {folder} does not exist; create it first.")
    model.eval()
    weight = model.norm.weight
    # batch 2, not 1: an example of batch 1 lets the exporters specialize the batch dimension to 1
    example = torch.randn(2, model.in_chans, *model.input_size, device=weight.device, dtype=weight.dtype)
    preprocessing = json.dumps(model.pretrained_cfg)
    if fmt == "onnx":
        _export_onnx(model, example, path, preprocessing)
    else:
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        with torch.no_grad():
            program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, path, extra_files={"preprocessing.json": preprocessing})


def _export_onnx(model: nn.Module, example: torch.Tensor, path: str, preprocessing: str) -> None:
    onnx = _import("onnx")
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns at every Python shape check; all of them are static except the batch, declared below
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), path, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
    graph = onnx.load(path)
    onnx.helper.set_model_props(graph, {"preprocessing": preprocessing})
    onnx.save(graph, path)


def load_exported(path: str, fmt: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function running the exported file on a CPU float32 batch: onnxruntime for ONNX, else the program."""
    if fmt != "onnx":
        return torch.export.load(path).module()
    session = _import("onnxruntime").InferenceSession(path, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

    return run


def read_preprocessing(path: str, fmt: str) -> dict:
    """The ``pretrained_cfg`` stored in an exported file (lists where the model had tuples)."""
    if fmt == "onnx":
        props = {p.key: p.value for p in _import("onnx").load(path).metadata_props}
        return json.loads(props["preprocessing"])
    extra_files = {"preprocessing.json": ""}
    torch.export.load(path, extra_files=extra_files)
    return json.loads(extra_files["preprocessing.json"])


class Comparison(NamedTuple):
    """The exported model against eager on one random batch."""

    max_difference: float  # max |exported - eager| of the logits
    max_logit: float  # max |eager logit|

    @property
    def within_tolerance(self) -> bool:
        """Whether the difference is at most TOLERANCE, relative to the logits' scale when that exceeds 1."""
        return self.max_difference <= TOLERANCE * max(1.0, self.max_logit)


def compare_with_eager(model: nn.Module, exported: Callable[[torch.Tensor], torch.Tensor],
                       batch_sizes: Sequence[int] = (1, 3), seed: int = 0) -> Dict[int, Comparison]:
    """The exported model against eager ``model`` on random CPU inputs, per batch size."""
    generator = torch.Generator().manual_seed(seed)
    model = model.eval().cpu()
    comparisons = {}
    with torch.no_grad():
        for batch in batch_sizes:
            x = torch.randn(batch, model.in_chans, *model.input_size, generator=generator)
            eager = model(x)
            comparisons[batch] = Comparison((exported(x) - eager).abs().max().item(), eager.abs().max().item())
    return comparisons


def _import(package: str):
    try:
        return __import__(package)
    except ImportError:
        raise EnvironmentMismatchError(f"ONNX export needs the {package} package: pip install "
                                       "onnx onnxruntime (or pip install -e '.[export]' in a checkout).") from None
