"""What each config key may hold: :data:`KEY_RANGES`, one table from every dotted key to its constraint.

:func:`hiera_video.config.validate_config` checks the finished config against it and names the key, its
value, where it was set and what is allowed. A constraint says what the code reading the key needs (the
comments name that code where it is not obvious). Rules that tie several keys together (crop size and
jitter scales, input size and model, embed width and heads) are checked after these, in validate_config.
"""
from __future__ import annotations

import difflib
import math
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union


class Constraint(ABC):
    """A rule for one key's value: ``allows(value)``, and ``explain()`` for the error message."""

    note = ""

    @abstractmethod
    def allows(self, value: Any) -> bool:
        """Whether ``value`` (already of the default's type) is allowed."""

    @abstractmethod
    def describe(self) -> str:
        """What is allowed, as the end of "KEY must be ..."."""

    def explain(self) -> str:
        """:meth:`describe`, with the key's note on what the values mean."""
        return f"{self.describe()} ({self.note})" if self.note else self.describe()

    def hint(self, value: Any) -> str:
        """A suggestion for a rejected ``value`` (`` Did you mean 'x'?``), or ""."""
        return ""


def _bound(number: float) -> str:
    """``1`` for 1.0, ``0.5`` for 0.5: bounds read as written in the table."""
    return f"{number:g}"


@dataclass(frozen=True)
class Ints(Constraint):
    """An integer (never a bool) from ``low`` to ``high`` inclusive; ``high`` None: no upper bound."""

    low: int
    high: Optional[int] = None
    note: str = ""

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is an int within the bounds."""
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return self.low <= value and (self.high is None or value <= self.high)

    def describe(self) -> str:
        """``an integer, at least 1`` or ``an integer in [0, 10]``."""
        if self.high is None:
            return f"an integer, at least {self.low}"
        return f"an integer in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Floats(Constraint):
    """A finite number from ``low`` to ``high`` (None: unbounded); an open end excludes its bound."""

    low: float
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is a finite number within the bounds."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        """``a number above 0``, ``a number, at least 0`` or ``a number in [0, 1)``."""
        if self.high is None:
            return f"a number above {_bound(self.low)}" if self.low_open else f"a number, at least {_bound(self.low)}"
        return (f"a number in {'(' if self.low_open else '['}{_bound(self.low)}, "
                f"{_bound(self.high)}{')' if self.high_open else ']'}")


@dataclass(frozen=True)
class Choice(Constraint):
    """One of ``options`` (or of what a registry function returns when the config is checked)."""

    options: Union[tuple, Callable[[], Sequence]]
    ignore_case: bool = False
    note: str = ""

    def choices(self) -> list:
        """The allowed values now (registries can grow)."""
        return list(self.options() if callable(self.options) else self.options)

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices (a string compared case-insensitively if asked)."""
        if self.ignore_case and isinstance(value, str):
            return value.lower() in [str(option).lower() for option in self.choices()]
        return value in self.choices()

    def describe(self) -> str:
        """``one of ['a', 'b']``."""
        return f"one of {self.choices()}"

    def hint(self, value: Any) -> str:
        """The closest choice to a mistyped string."""
        names = [option for option in self.choices() if isinstance(option, str)]
        close = difflib.get_close_matches(value, names, n=1, cutoff=0.6) if isinstance(value, str) else []
        return f" Did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Text(Constraint):
    """A string; ``non_empty`` refuses ""; ``pattern`` (a regular expression) must match all of it."""

    non_empty: bool = False
    pattern: Optional[str] = None
    note: str = ""

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is a string that is non-empty / matches when asked."""
        if not isinstance(value, str) or (self.non_empty and not value):
            return False
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None

    def describe(self) -> str:
        """``a string``, ``a non-empty string`` or ``a string matching ...``."""
        if self.pattern is not None:
            return f"a string matching {self.pattern!r}"
        return "a non-empty string" if self.non_empty else "a string"


@dataclass(frozen=True)
class Flag(Constraint):
    """True or False."""

    note: str = ""

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is a bool."""
        return isinstance(value, bool)

    def describe(self) -> str:
        """``True or False``."""
        return "True or False"


@dataclass(frozen=True)
class Folder(Constraint):
    """A folder to write into: a non-empty path without NUL that is not an existing file."""

    note: str = ""

    def allows(self, value: Any) -> bool:
        """Whether ``value`` can be (or already is) a folder."""
        if not isinstance(value, str) or not value or "\0" in value:
            return False
        return os.path.isdir(value) or not os.path.exists(value)

    def describe(self) -> str:
        """What a folder path must be."""
        return "a folder path (not empty, not an existing file)"


@dataclass(frozen=True)
class Items(Constraint):
    """A list whose every item satisfies ``item``; ``lengths`` lists the allowed lengths (None: any from
    ``min_length``); ``ordered``: items in non-decreasing order."""

    item: Constraint
    lengths: Optional[tuple] = None
    min_length: int = 0
    ordered: bool = False
    note: str = ""

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is a list of allowed length, items and order."""
        if not isinstance(value, (list, tuple)) or not self._allows_length(len(value)):
            return False
        if not all(self.item.allows(item) for item in value):
            return False
        return not self.ordered or list(value) == sorted(value)

    def _allows_length(self, length: int) -> bool:
        return length in self.lengths if self.lengths is not None else length >= self.min_length

    def describe(self) -> str:
        """``[] or a list of 3 values, each an integer, at least 1``."""
        counts = [str(n) for n in self.lengths or () if n]
        if counts:
            size = " or ".join(counts) + " "
        else:
            size = f"{self.min_length} or more " if self.min_length else ""
        text = f"a list of {size}values, each {self.item.describe()}"
        if self.ordered:
            text += ", smallest first"
        return f"[] or {text}" if self.lengths and 0 in self.lengths else text


def _task_names() -> list:
    from hiera_video.engine.tasks import task_names

    return task_names()


def _model_names() -> list:
    from hiera_video.models.registry import list_models

    return list_models()


def _dataset_names() -> list:
    from hiera_video.datasets.registry import DATASETS

    return sorted(DATASETS)


def _decoding_backends() -> tuple:
    from hiera_video.datasets.decoding import BACKENDS

    return BACKENDS


def _distributed_backends() -> list:
    import torch.distributed

    return [""] + [name for name in torch.distributed.Backend.backend_list if name not in ("undefined", "fake")]


def _loss_functions() -> list:
    from hiera_video.engine.tasks.classification import LOSS_FUNCTIONS

    return [*LOSS_FUNCTIONS, "bce"]  # the classifiers', and AVA's (each task checks its own)


POSITIVE = Ints(1)
NON_NEGATIVE = Ints(0)
FRACTION = Floats(0.0, 1.0)  # a probability or share, both ends allowed
BELOW_ONE = Floats(0.0, 1.0, high_open=True)  # a rate where 1 would drop / hide everything
_KEEP = "[] keeps the named model's"
# One per input dimension (T, H, W) of a video model.
_PER_DIMENSION = (0, 3)
# timm's RandAugment policy as VideoRandAugment.parse_policy reads it (m, n, mstd settings; inc1 only).
RAND_AUGMENT_POLICY = r"(rand(-(m[0-9]+(\.[0-9]+)?|n[0-9]+|mstd[0-9]+(\.[0-9]+)?|inc1))*)?"

KEY_RANGES: dict[str, Constraint] = {
    "TASK": Choice(_task_names, note="the registered tasks"),
    "NUM_GPUS": Ints(0, note="0 runs on CPU"),
    "OUTPUT_DIR": Folder(),
    # Python, NumPy (mod 2**32) and torch seeds, plus per-epoch and per-rank offsets.
    "RNG_SEED": Ints(0, 2**32 - 1),
    "LOG_PERIOD": POSITIVE,  # trainer: (it + 1) % LOG_PERIOD
    "DIST_BACKEND": Choice(_distributed_backends, note="'' picks nccl on GPU, gloo on CPU"),
    "TRAIN.ENABLE": Flag(),
    "TRAIN.DATASET": Choice(_dataset_names, ignore_case=True),
    "TRAIN.BATCH_SIZE": POSITIVE,
    "TRAIN.EVAL_PERIOD": Ints(0, note="0 disables validation"),
    "TRAIN.CHECKPOINT_PERIOD": POSITIVE,
    "TRAIN.AUTO_RESUME": Flag(),
    "TRAIN.CHECKPOINT_FILE_PATH": Text(),
    "TRAIN.MIXED_PRECISION": Choice(("", "bf16", "fp16", "auto"),
                                    note="auto: bf16 (fp16) on GPU, bf16 on CPUs with AMX / AVX512-BF16, else float32"),
    "TRAIN.ACCUM_STEPS": POSITIVE,
    "TRAIN.MAX_FAILED_FRACTION": FRACTION,
    "TEST.ENABLE": Flag(),
    "TEST.DATASET": Choice(_dataset_names, ignore_case=True),
    "TEST.BATCH_SIZE": POSITIVE,
    "TEST.CHECKPOINT_FILE_PATH": Text(),
    "TEST.NUM_ENSEMBLE_VIEWS": POSITIVE,
    # datasets/transforms.py spatial_views takes 1 or 3 crops.
    "TEST.NUM_SPATIAL_CROPS": Choice((1, 3), note="1: the centre; 3: both ends and the centre of the long side"),
    "TEST.SPLIT": Choice(("val", "test")),
    "TEST.ALLOW_RANDOM_INIT": Flag(),
    "TEST.COMPILE": Flag(),
    "MODEL.MODEL_NAME": Choice(_model_names, note="hiera_video.models.list_models()"),
    "MODEL.NUM_CLASSES": POSITIVE,
    "MODEL.DROPOUT_RATE": BELOW_ONE,
    "MODEL.DROP_PATH_RATE": BELOW_ONE,  # drop path divides by the keep probability 1 - rate
    "MODEL.ACT_CHECKPOINT": Flag(),
    "MODEL.LOSS_FUNC": Choice(_loss_functions),
    # engine/tasks/base.py hiera_overrides: 0, -1 or [] keep the named model's value.
    "HIERA.EMBED_DIM": Ints(0, note="0 keeps the named model's"),
    "HIERA.NUM_HEADS": Ints(0, note="0 keeps the named model's"),
    "HIERA.STAGES": Items(POSITIVE, note=f"blocks per stage; {_KEEP}"),
    "HIERA.Q_POOL": Ints(-1, note="-1 keeps the named model's"),
    "HIERA.Q_STRIDE": Items(POSITIVE, _PER_DIMENSION, note=f"T, H, W; {_KEEP}"),
    "HIERA.MASK_UNIT_SIZE": Items(POSITIVE, _PER_DIMENSION, note=f"T, H, W; {_KEEP}"),
    "HIERA.MASK_UNIT_ATTN": Items(Flag(), note=f"one per stage; {_KEEP}"),
    "HIERA.PATCH_KERNEL": Items(POSITIVE, _PER_DIMENSION, note=f"T, H, W; {_KEEP}"),
    "HIERA.PATCH_STRIDE": Items(POSITIVE, _PER_DIMENSION, note=f"T, H, W; {_KEEP}"),
    "HIERA.PATCH_PADDING": Items(NON_NEGATIVE, _PER_DIMENSION, note=f"T, H, W; {_KEEP}"),
    "HIERA.MLP_RATIO": Floats(0.0, note="0 keeps the named model's"),
    "MAE.MASK_RATIO": BELOW_ONE,
    "MAE.DECODER_EMBED_DIM": POSITIVE,
    "MAE.DECODER_DEPTH": NON_NEGATIVE,  # 0 blocks: the decoder is its embedding and prediction layers
    "MAE.DECODER_NUM_HEADS": POSITIVE,
    "MAE.NORM_PIX_LOSS": Flag(),
    "MAE.TARGET": Choice(("pixel", "hog"), note="models/hiera_mae.py: normalized pixels or MaskFeat HOG"),
    "MAE.MULTI_SCALE_FUSION": Flag(),
    "DATA.PATH_TO_DATA_DIR": Text(),
    "DATA.PATH_PREFIX": Text(),
    "DATA.PATH_LABEL_SEPARATOR": Text(non_empty=True),  # str.split("") raises
    "DATA.NUM_FRAMES": POSITIVE,
    "DATA.SAMPLING_RATE": POSITIVE,
    # sampling.py clip_span divides by it; no value means "the video's own rate".
    "DATA.TARGET_FPS": POSITIVE,
    "DATA.USE_OFFSET_SAMPLING": Flag(),
    # Pixels are scaled to [0, 1] before (x - mean) / std, one value per RGB channel.
    "DATA.MEAN": Items(FRACTION, (3,)),
    "DATA.STD": Items(Floats(0.0, low_open=True), (3,)),
    "DATA.TRAIN_JITTER_SCALES": Items(POSITIVE, (2,), ordered=True, note="[min, max] short sides, min <= max"),
    # torchvision RandomResizedCrop scale / ratio: (min, max).
    "DATA.TRAIN_JITTER_SCALES_RELATIVE": Items(Floats(0.0, 1.0, low_open=True), (2,), ordered=True,
                                               note="[min, max] crop area over frame area"),
    "DATA.TRAIN_JITTER_ASPECT_RELATIVE": Items(Floats(0.0, low_open=True), (2,), ordered=True,
                                               note="[min, max] crop aspect ratio"),
    "DATA.RANDOM_RESIZED_CROP": Flag(),
    "DATA.TRAIN_CROP_SIZE": POSITIVE,
    "DATA.TEST_CROP_SIZE": POSITIVE,
    "DATA.RANDOM_FLIP": Flag(),
    "DATA.DECODING_BACKEND": Choice(_decoding_backends),
    "DATA.DECODE_TIMEOUT": Floats(0.0, note="seconds; 0 never times out"),
    "DATA.NUM_RETRIES": NON_NEGATIVE,
    "DATA.VIDEO_NAME_FORMAT": Text(non_empty=True),
    "DATA.REVERSE_INPUT_CHANNEL": Flag(),
    "DATA.FORMAT": Choice(("files", "shards"), note="datasets/registry.py: list files or tar shards"),
    "DATA.REMOTE_TIMEOUT": Floats(0.0, low_open=True, note="seconds per remote request"),
    "DATA.REMOTE_RETRIES": NON_NEGATIVE,
    "AUG.ENABLE": Flag(),
    "AUG.NUM_SAMPLE": POSITIVE,
    "AUG.AA_TYPE": Text(pattern=RAND_AUGMENT_POLICY, note="e.g. rand-m7-n4-mstd0.5-inc1; '' for none"),
    "AUG.RE_PROB": FRACTION,
    "AUG.RE_MODE": Choice(("pixel", "const")),
    "AUG.RE_COUNT": POSITIVE,  # random.randint(1, RE_COUNT) boxes
    "MIXUP.ENABLE": Flag(),
    "MIXUP.ALPHA": Floats(0.0, note="0 disables mixup"),
    "MIXUP.CUTMIX_ALPHA": Floats(0.0, note="0 disables cutmix"),
    "MIXUP.PROB": FRACTION,
    "MIXUP.SWITCH_PROB": FRACTION,
    "MIXUP.LABEL_SMOOTH_VALUE": BELOW_ONE,
    "SOLVER.BASE_LR": Floats(0.0, low_open=True),
    "SOLVER.BASE_LR_SCALE_BATCH": Flag(),
    "SOLVER.LR_POLICY": Choice(("cosine",)),
    "SOLVER.COSINE_END_LR": Floats(0.0),
    "SOLVER.WARMUP_EPOCHS": Floats(0.0, note="0 starts at the peak lr"),
    "SOLVER.WARMUP_START_LR": Floats(0.0),
    "SOLVER.MAX_EPOCH": POSITIVE,
    "SOLVER.OPTIMIZING_METHOD": Choice(("adamw", "sgd"), ignore_case=True),
    "SOLVER.MOMENTUM": Floats(0.0, 1.0, low_open=True, high_open=True),  # SGD's nesterov=True needs momentum > 0
    "SOLVER.BETAS": Items(BELOW_ONE, (2,)),
    "SOLVER.WEIGHT_DECAY": Floats(0.0),
    "SOLVER.LAYER_DECAY": Floats(0.0, 1.0, low_open=True, note="1 disables"),
    "SOLVER.ZERO_WD_1D_PARAM": Flag(),
    "SOLVER.CLIP_GRAD_L2NORM": Floats(0.0, note="0 disables"),
    "DATA_LOADER.NUM_WORKERS": Ints(0, note="0 loads in the main process"),
    "DATA_LOADER.PIN_MEMORY": Flag(),
    "AVA.FRAME_DIR": Text(),
    "AVA.FRAME_LIST_DIR": Text(),
    "AVA.ANNOTATION_DIR": Text(),
    "AVA.TRAIN_LISTS": Items(Text(non_empty=True), min_length=1),  # ava.py reads lists[0]
    "AVA.TEST_LISTS": Items(Text(non_empty=True), min_length=1),
    "AVA.TRAIN_GT_BOX_LISTS": Items(Text(non_empty=True)),
    "AVA.TRAIN_PREDICT_BOX_LISTS": Items(Text(non_empty=True)),
    "AVA.TEST_PREDICT_BOX_LISTS": Items(Text(non_empty=True)),
    "AVA.DETECTION_SCORE_THRESH": FRACTION,
    "AVA.LABEL_MAP_FILE": Text(non_empty=True),
    "AVA.EXCLUSION_FILE": Text(note="'' for none"),
    "AVA.GROUNDTRUTH_FILE": Text(non_empty=True),
    "AVA.TRAIN_USE_COLOR_AUGMENTATION": Choice((False,), note="not implemented"),
    "AVA.BGR": Flag(),
    "AVA.TEST_FORCE_FLIP": Flag(),
    "AVA.VIDEO_DIR": Text(note="'' reads frames under AVA.FRAME_DIR"),
    "AVA.TRAIN_BOX_JITTER": FRACTION,
}
