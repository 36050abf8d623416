"""Token orderings: our precomputed permutations equal the official Unroll/Reroll."""
import pytest
import torch

from hiera_video.models.token_order import unroll_permutation


@pytest.mark.parametrize("size, schedule", [
    ((4, 16, 16), [(1, 2, 2)] * 3),
    ((32, 32), [(2, 2)] * 3),
    ((2, 8, 12), [(1, 2, 2)] * 2),
])
def test_unroll_matches_official(official, size, schedule):
    from hiera.hiera_utils import Unroll

    tokens = torch.arange(torch.Size(size).numel(), dtype=torch.float32).view(1, -1, 1)
    reference = Unroll(size, [1] * len(size), schedule)(tokens).view(-1).long()
    assert torch.equal(unroll_permutation(size, schedule), reference)


def test_unroll_puts_the_mask_unit_index_fastest():
    perm = unroll_permutation((16, 16), [(2, 2)] * 3)
    # the first four tokens come from the four 8x8 mask units, each at the unit's top-left corner
    assert perm[:4].tolist() == [0, 8, 128, 136]
