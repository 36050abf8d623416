"""The task contract: what the trainer, the tester and ``tools/run_net.py`` may ask of a ``TASK``.

A task builds its model and loaders from the config, turns one loader batch into a :class:`StepOutput`
(the loss and everything the trainer logs and counts), and scores a split into an :class:`Evaluation`
(its metrics and the summary the CLI prints). The engine never looks inside a batch or a metrics dict:
a new task is a new :class:`Task` subclass registered with ``@register_task("name")``, and the registry
is the one list of tasks (config validation asks :func:`task_names`).
"""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import torch
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader

from hiera_video.models import load_checkpoint
from hiera_video.models.hiera import Hiera
from hiera_video.models.registry import model_architecture

from ..data import build_test_loader, build_train_loader
from ..distributed import DistributedContext
from ..preemption import PreemptionGuard

_TASKS: dict[str, type["Task"]] = {}


def register_task(name: str) -> Callable[[type["Task"]], type["Task"]]:
    """Class decorator registering a Task under the ``TASK`` config value ``name``."""

    def decorator(cls: type["Task"]) -> type["Task"]:
        cls.name = name
        _TASKS[name] = cls
        return cls

    return decorator


def task_names() -> list[str]:
    """The registered ``TASK`` values."""
    return sorted(_TASKS)


def task_class(name: str) -> type["Task"]:
    """The Task class registered as ``name``; ValueError listing the known ones otherwise."""
    if name not in _TASKS:
        raise ValueError(f"TASK '{name}' has no registered task; known: {task_names()}.")
    return _TASKS[name]


def get_task(cfg: CfgNode) -> "Task":
    """The Task named by ``cfg.TASK``, built on ``cfg``."""
    return task_class(cfg.TASK)(cfg)


@dataclass
class StepOutput:
    """What one training step hands the trainer.

    ``loss`` is the scalar to back-propagate; ``stats`` are scalars to log and average over the epoch
    (0-dim tensors may stay on the device: the trainer reads them with the loss in one host sync);
    ``num_clips`` counts the clips this process fed the model; ``replaced`` lists ``(video, reason)`` of the
    videos the dataset replaced because they failed to decode (the trainer counts them against
    TRAIN.MAX_FAILED_FRACTION and reports them).
    """

    loss: torch.Tensor
    num_clips: int
    stats: dict[str, Any] = field(default_factory=dict)
    replaced: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Evaluation:
    """What scoring a split gives, the same on every process.

    ``metrics`` holds everything measured (what the task wrote to ``results_dir``), ``summary`` the
    headline numbers: logged after validation, and printed as JSON by ``tools/run_net.py``.
    """

    split: str
    checkpoint: Optional[str]
    metrics: dict[str, Any]
    summary: dict[str, Any]
    results_dir: Optional[str] = None


def hiera_overrides(cfg: CfgNode) -> dict[str, Any]:
    """Constructor arguments from the HIERA.* keys that are set (empty / zero / -1 keep the named model's)."""
    h = cfg.HIERA
    overrides: dict[str, Any] = {}
    for key, arg in (("EMBED_DIM", "embed_dim"), ("NUM_HEADS", "num_heads")):
        if h[key] > 0:
            overrides[arg] = h[key]
    if h.Q_POOL >= 0:
        overrides["q_pool"] = h.Q_POOL
    if h.MLP_RATIO > 0:
        overrides["mlp_ratio"] = h.MLP_RATIO
    for key, arg in (("STAGES", "stages"), ("Q_STRIDE", "q_stride"), ("MASK_UNIT_SIZE", "mask_unit_size"),
                     ("MASK_UNIT_ATTN", "mask_unit_attn"), ("PATCH_KERNEL", "patch_kernel"),
                     ("PATCH_STRIDE", "patch_stride"), ("PATCH_PADDING", "patch_padding")):
        if len(h[key]) > 0:
            overrides[arg] = tuple(h[key])
    return overrides


def describe_model(cfg: CfgNode, model: torch.nn.Module) -> str:
    """``MODEL.MODEL_NAME`` with the HIERA.* overrides that change it and its parameter count, for the log
    (``hiera_base_16x224 with embed_dim=16, stages=(1, 1, 1, 1): 0.31M parameters``)."""
    overrides = ", ".join(f"{name}={value}" for name, value in hiera_overrides(cfg).items())
    count = sum(p.numel() for p in model.parameters())
    return f"{cfg.MODEL.MODEL_NAME}{' with ' + overrides if overrides else ''}: {count / 1e6:.2f}M parameters"


def named_architecture(cfg: CfgNode, name: str) -> dict[str, Any]:
    """Constructor arguments of model ``name`` as built from ``cfg``: Hiera's defaults (which the MAE model
    passes on), the registered model's, then the HIERA.* overrides."""
    _, architecture = model_architecture(name)
    defaults = {arg: parameter.default for arg, parameter in inspect.signature(Hiera).parameters.items()
                if parameter.default is not inspect.Parameter.empty}
    return {**defaults, **architecture, **hiera_overrides(cfg)}


def model_input_size(cfg: CfgNode) -> tuple[int, ...]:
    """(T, H, W) of the model input: DATA.NUM_FRAMES frames of DATA.TRAIN_CROP_SIZE squares; (H, W) for an
    image model (``hiera_*_224``, whose registered input size has two entries)."""
    crop = cfg.DATA.TRAIN_CROP_SIZE
    if len(named_architecture(cfg, cfg.MODEL.MODEL_NAME)["input_size"]) == 2:
        return (crop, crop)
    return (cfg.DATA.NUM_FRAMES, crop, crop)


class Task(ABC):
    """Base class: one job kind's model, loaders, training step and evaluation."""

    #: The ``TASK`` value (set by :func:`register_task`).
    name: ClassVar[str] = ""
    #: Whether the task has a test stage (``TEST.ENABLE``) and validation (``TRAIN.EVAL_PERIOD``).
    has_test_stage: ClassVar[bool] = False
    #: Whether its test stage can run the model through ``torch.compile`` (``TEST.COMPILE``).
    compiles_for_testing: ClassVar[bool] = False

    def __init__(self, cfg: CfgNode):
        self.cfg = cfg

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Raise ValueError for settings this task cannot run (config validation calls it)."""

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        """A fresh model for this task."""

    def load_pretrained(self, model: torch.nn.Module, path: str) -> None:
        """Initialize ``model`` from a checkpoint of another job (TRAIN.CHECKPOINT_FILE_PATH)."""
        load_checkpoint(model, path)

    def build_train_loader(self, ctx: DistributedContext) -> DataLoader:
        """The shuffled, sharded, reseeded training loader (:func:`hiera_video.engine.data.build_train_loader`)."""
        return build_train_loader(self.cfg, ctx)

    def build_test_loader(self, ctx: DistributedContext, split: str) -> DataLoader:
        """The sharded loader of ``split`` in test mode (:func:`hiera_video.engine.data.build_test_loader`)."""
        return build_test_loader(self.cfg, ctx, split)

    @abstractmethod
    def training_step(self, model: torch.nn.Module, batch: Any, device: torch.device) -> StepOutput:
        """The loss of one training batch, with what the trainer logs and counts."""

    def evaluate(self, model: torch.nn.Module, ctx: DistributedContext, split: str,
                 results_dir: Optional[str], checkpoint: Optional[str] = None,
                 preemption: Optional[PreemptionGuard] = None) -> Evaluation:
        """Score ``split`` on every process; rank 0 writes result files (naming the tested ``checkpoint``)
        to ``results_dir`` (None: none). With ``preemption`` (the test stage), SIGTERM keeps the finished
        batches for the next run (see :mod:`hiera_video.engine.testing_resume`)."""
        raise TypeError(f"TASK '{self.name}' has no test stage; set TEST.ENABLE False.")
