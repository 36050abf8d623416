"""Engine data loaders: per-item seeding makes training clips independent of workers and restarts."""
import random

import numpy as np
import torch

from hiera_video.engine.data import SeededItems, SeededTrainSampler, item_seed, seeded_generators
from tests.engine.fakes import MovingSquares


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seeded_generators_repeat_their_draws_and_leave_the_callers_stream_alone():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    expected_after = draws()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    with seeded_generators(7):
        first = draws()
    with seeded_generators(7):
        again = draws()
    with seeded_generators(8):
        other = draws()
    assert first == again and all(a != b for a, b in zip(first, other))
    assert draws() == expected_after


def test_the_sampler_pairs_every_index_with_a_seed_of_its_epoch():
    sampler = SeededTrainSampler(range(10), num_replicas=2, rank=1, shuffle=True, seed=3, drop_last=True)
    sampler.set_epoch(4)
    pairs = list(sampler)
    assert len(pairs) == 5 and all(seed == item_seed(3, 4, index) for index, seed in pairs)
    sampler.set_epoch(5)
    assert {seed for _, seed in sampler}.isdisjoint({seed for _, seed in pairs})
    sampler.skip_next_pass(2)
    assert len(list(sampler)) == 3


def test_seeded_items_are_the_same_whatever_was_drawn_before_and_keep_the_dataset_attributes():
    items = SeededItems(MovingSquares(4, "train"))
    first = items[(2, 11)]["clip"]
    torch.rand(100)  # another worker, or another position in the epoch, would have drawn differently
    assert torch.equal(items[(2, 11)]["clip"], first)
    assert not torch.equal(items[(2, 12)]["clip"], first)  # another epoch: other augmentation noise
    assert items.class_names == ["right", "left", "down", "up"] and len(items) == 4
