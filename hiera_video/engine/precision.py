"""Mixed precision: autocast to bf16 / fp16 and the gradient scaler fp16 needs."""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to bf16 / fp16 for ``precision`` in TRAIN.MIXED_PRECISION ("" keeps float32)."""
    if not precision:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_PRECISION[precision])


def build_grad_scaler(precision: str, device: torch.device) -> Optional[torch.amp.GradScaler]:
    """A gradient scaler for fp16 (CUDA); None otherwise (bf16 and float32 need none)."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def precision_name(precision: str) -> str:
    """How TRAIN.MIXED_PRECISION runs, for the log: "float32", "bf16 autocast" or "fp16 autocast"."""
    return f"{precision} autocast" if precision else "float32"
