"""Size and cost of a model: parameters and multiply-accumulates (MACs), attention included.

MACs are counted as the Hiera paper does: ``torch.utils.flop_counter`` counts every matmul, convolution
and attention product; one MAC is two FLOPs. The count runs on the meta device, so even Hiera-H costs no
memory. Blocks that repeat (same hyperparameters, same input shape: most blocks of a stage) are counted
once and their cost reused: Hiera-H's count takes a sixth of the time.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def block_fingerprint(block: nn.Module) -> tuple:
    """What decides a block's cost: its printed structure and the scalar settings of it and its parts
    (strides, window sizes, flags), which the printed structure leaves out."""
    settings = tuple(
        (name, key, value)
        for name, module in block.named_modules()
        for key, value in sorted(vars(module).items())
        if not key.startswith("_") and isinstance(value, (bool, int, float, str, tuple))
    )
    return repr(block), settings


@contextmanager
def repeated_blocks_counted_once(blocks: nn.ModuleList, counter: FlopCounterMode) -> Iterator[List[int]]:
    """Within ``counter``, run each distinct block once; a repeat returns an empty tensor of the output's
    shape and adds the first run's FLOPs to the yielded one-item list. Only for counting: the repeats'
    outputs hold no values."""
    skipped_flops = [0]
    seen: Dict[tuple, tuple] = {}

    def counted_once(block: nn.Module, fingerprint: tuple):
        run_block = block.forward

        def forward(x: torch.Tensor) -> torch.Tensor:
            key = (fingerprint, tuple(x.shape), x.dtype)
            if key in seen:
                flops, shape = seen[key]
                skipped_flops[0] += flops
                return x.new_empty(shape)
            before = counter.get_total_flops()
            out = run_block(x)
            seen[key] = (counter.get_total_flops() - before, tuple(out.shape))
            return out

        return forward

    for block in blocks:
        block.forward = counted_once(block, block_fingerprint(block))
    try:
        yield skipped_flops
    finally:
        for block in blocks:
            del block.forward  # back to the class's forward


def count_macs(model: nn.Module, inputs: torch.Tensor, reuse_repeated_blocks: bool = True) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on ``inputs`` (attention included).

    With ``reuse_repeated_blocks``, blocks in ``model.blocks`` that repeat are run once (see
    :func:`repeated_blocks_counted_once`); the count is the same.
    """
    blocks = getattr(model, "blocks", None) if reuse_repeated_blocks else None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        if isinstance(blocks, nn.ModuleList):
            with repeated_blocks_counted_once(blocks, counter) as skipped_flops:
                model(inputs)
        else:
            skipped_flops = [0]
            model(inputs)
    return (counter.get_total_flops() + skipped_flops[0]) // 2


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
