"""Size and cost of a model: parameters and multiply-accumulates (MACs), attention included.

MACs are counted as the Hiera paper does: ``torch.utils.flop_counter`` counts every matmul, convolution
and attention product; one MAC is two FLOPs. The count runs on the meta device, so even Hiera-H costs no
memory and well under a second.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on ``inputs`` (attention included)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(inputs)
    return counter.get_total_flops() // 2


def model_complexity(name: str, batch_size: int = 1, **overrides) -> Dict[str, Optional[float]]:
    """Parameters (millions) and GMACs of a named model at its input size, computed on the meta device.

    MAE models get parameters only (``gmacs`` None): their cost depends on the random mask, whose
    data-dependent token selection cannot run on the meta device.
    """
    with torch.device("meta"):
        model = create_model(name, **overrides).eval()
        inputs = torch.empty(batch_size, model.in_chans, *model.input_size)
        is_mae = hasattr(model, "decoder_blocks")
        macs = None if is_mae else count_macs(model, inputs)
    return {"params_m": count_parameters(model) / 1e6, "gmacs": None if macs is None else macs / 1e9,
            "input_size": "x".join(map(str, model.input_size))}
