"""The synthetic motion dataset: Kinetics-format lists, and classes that differ only in motion."""
import numpy as np
import pytest

from hiera_video.utils.motion_dataset import (
    CLASS_NAMES, DIRECTIONS, SPEEDS, MotionVideoSpec, make_motion_dataset, render_motion_video,
)


@pytest.mark.parametrize("label", range(len(CLASS_NAMES)))
def test_each_class_moves_its_shapes_in_its_direction_at_its_speed(label):
    spec = MotionVideoSpec(height=64, width=64, num_frames=6, num_shapes=1)
    frames = render_motion_video(label, np.random.default_rng(label), spec)
    # The shape is the one solid colour: the most common exact pixel value of the first frame.
    values, counts = np.unique(frames[0].reshape(-1, 3), axis=0, return_counts=True)
    color = values[counts.argmax()]
    direction, speed = CLASS_NAMES[label].split("_")
    shift = np.round(np.array(DIRECTIONS[direction]) * SPEEDS[speed] * 5).astype(int)  # 5 frames later
    first, later = ((frames[t] == color).all(axis=-1) for t in (0, 5))
    # Shapes wrap around the frame edges, as np.roll does.
    expected = np.roll(first, tuple(shift), axis=(0, 1))
    overlap = (expected & later).sum() / (expected | later).sum()
    assert overlap > 0.9
    assert (first & later).sum() < first.sum()  # it did move


def test_the_dataset_is_written_in_kinetics_format(tmp_path):
    make_motion_dataset(tmp_path, {"train": 2, "val": 1})
    lines = (tmp_path / "train.csv").read_text().splitlines()
    assert len(lines) == 2 * len(CLASS_NAMES)
    path, label = lines[-1].split(" ")
    assert (tmp_path / path).is_file() and int(label) == len(CLASS_NAMES) - 1
    assert (tmp_path / "labels.txt").read_text().split() == CLASS_NAMES
    assert len((tmp_path / "val.csv").read_text().splitlines()) == len(CLASS_NAMES)
