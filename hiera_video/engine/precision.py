"""Mixed precision: autocast to bf16 / fp16, the gradient scaler fp16 needs, and the ``auto`` choice."""
from __future__ import annotations

import contextlib
import logging
from typing import Optional

import torch

from ..utils.cpu import cpu_supports_bf16

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """The autocast mode (``""`` float32, ``"bf16"``, ``"fp16"``) for a ``precision`` of :data:`PRECISIONS`
    or of TRAIN.MIXED_PRECISION (``""`` is float32). ``auto``: bf16 on CUDA (fp16 on GPUs without bf16), bf16
    on CPUs with native bf16 (:func:`cpu_supports_bf16`), float32 on other CPUs."""
    if precision not in PRECISIONS + ("",):
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and cpu_supports_bf16() else ""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a CUDA device; on CPU use bf16 or fp32")
    return "" if precision == "fp32" else precision


def log_precision(precision: str, device: torch.device) -> str:
    """:func:`resolve_precision`, with a log line saying which precision runs (and why, for ``auto``)."""
    resolved = resolve_precision(precision, device)
    reason = ""
    if precision == "auto" and device.type == "cpu":
        reason = " (this CPU has native bf16)" if resolved else " (this CPU has no native bf16)"
    logger.info("Precision: %s on %s%s", precision_name(resolved), device.type, reason)
    return resolved


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to bf16 / fp16 for ``precision`` in TRAIN.MIXED_PRECISION ("" keeps float32; ``auto`` is
    resolved for ``device`` by :func:`resolve_precision`)."""
    precision = resolve_precision(precision, device)
    if not precision:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_PRECISION[precision])


def build_grad_scaler(precision: str, device: torch.device) -> Optional[torch.amp.GradScaler]:
    """A gradient scaler for fp16 (CUDA); None otherwise (bf16 and float32 need none)."""
    return torch.amp.GradScaler(device.type) if resolve_precision(precision, device) == "fp16" else None


def precision_name(precision: str, device: Optional[torch.device] = None) -> str:
    """How TRAIN.MIXED_PRECISION runs, for the log: "float32", "bf16 autocast" or "fp16 autocast"; ``auto``
    is resolved for ``device`` (default: CUDA when available, else CPU)."""
    precision = resolve_precision(precision, device or _default_device())
    return f"{precision} autocast" if precision else "float32"
