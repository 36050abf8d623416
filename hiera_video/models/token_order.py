"""Token orderings of Hiera: the "unrolled" order the blocks work in, and the way back to space.

Hiera flattens patch tokens so that pooling and mask-unit attention become plain reshapes. With
q-stride ``s`` applied ``k`` times, the unrolled order of a [T, H, W] token grid is

    (s_1 offsets, s_2 offsets, ..., s_k offsets, coarse grid)       # mask-unit index varies fastest

so a 2x2 q-pool is a max over the outermost group of 4 and a mask unit is a contiguous window index.
Orders are computed once as index permutations, so unrolling and rerolling are single gathers.
"""
import math
from typing import List, Sequence, Tuple

import torch


def unroll_permutation(size: Sequence[int], schedule: Sequence[Sequence[int]]) -> torch.Tensor:
    """Index permutation ``perm`` with ``x_unrolled = x_spatial[:, perm]`` for tokens of grid ``size``.

    Each entry of ``schedule`` is one q-stride per dimension; its offsets move to the front (outermost).
    """
    dims = len(size)
    index = torch.arange(math.prod(size)).view(*size)
    lead: List[int] = []  # sizes of the offset axes already moved to the front
    grid = list(size)
    for strides in schedule:
        grid = [g // s for g, s in zip(grid, strides)]
        # [*lead, G0*s0, G1*s1, ...] -> [*lead, G0, s0, G1, s1, ...]
        split = [d for pair in zip(grid, strides) for d in pair]
        index = index.reshape(*lead, *split)
        # -> [*lead, s0, s1, ..., G0, G1, ...]
        n = len(lead)
        offsets = [n + 2 * d + 1 for d in range(dims)]
        coarse = [n + 2 * d for d in range(dims)]
        index = index.permute(*range(n), *offsets, *coarse)
        lead += list(strides)
    return index.reshape(-1)


def block_local_permutation(schedule: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, List[int]]:
    """Order of the offsets inside one unroll block, in row-major position within that block.

    Returns ``(perm, block_shape)``: token ``perm[j]`` of the block's offset index sits at position ``j``
    of a block of shape ``block_shape`` (the product of the remaining strides per dimension). The first
    stride of the schedule is the least significant digit of a position.
    """
    dims = len(schedule[0]) if schedule else 0
    if not schedule:
        return torch.zeros(1, dtype=torch.long), []
    block_shape = [math.prod(s[d] for s in schedule) for d in range(dims)]
    # offsets laid out [s1_d0, s1_d1, ..., s2_d0, ...]; position digits: last stride most significant
    index = torch.arange(math.prod(block_shape)).view(*[s for strides in schedule for s in strides])
    steps = len(schedule)
    order = [step * dims + d for d in range(dims) for step in reversed(range(steps))]
    return index.permute(*order).reshape(-1), block_shape


def mask_unit_layout(
    tokens_shape: Sequence[int], schedule: Sequence[Sequence[int]]
) -> Tuple[List[int], List[int]]:
    """Grid of unroll blocks and block shape for tokens of ``tokens_shape`` with ``schedule`` left."""
    _, block_shape = block_local_permutation(schedule)
    if not block_shape:
        block_shape = [1] * len(tokens_shape)
    grid = [t // b for t, b in zip(tokens_shape, block_shape)]
    return grid, block_shape


def undo_windowing(x: torch.Tensor, grid: Sequence[int], block_shape: Sequence[int]) -> torch.Tensor:
    """Interleave blocks back into space: [B, prod(grid), *block_shape, C] -> [B, *grid*block_shape, C]."""
    batch, channels, dims = x.shape[0], x.shape[-1], len(grid)
    x = x.view(batch, *grid, *block_shape, channels)
    # [B, g0, g1, .., b0, b1, .., C] -> [B, g0, b0, g1, b1, .., C]
    order = [0] + [a for d in range(dims) for a in (1 + d, 1 + dims + d)] + [2 * dims + 1]
    sizes = [g * b for g, b in zip(grid, block_shape)]
    return x.permute(*order).reshape(batch, *sizes, channels)
