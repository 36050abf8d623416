"""A synthetic Kinetics-format dataset whose classes differ only in motion.

Every video shows a few solid shapes moving together over a noise background. The class is the motion:
one of four directions (right, left, down, up) times two speeds (slow, fast). A single frame says
nothing about the class (shapes, colours and positions are random for every video), so a model must
use time. Videos are H.264 files written with :func:`hiera_video.datasets.synthetic.write_video`, listed
in ``train.csv`` / ``val.csv`` / ``test.csv`` as ``path label`` lines (PySlowFast's Kinetics format).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}
# Pixels per source frame at 30 fps.
SPEEDS = {"slow": 0.6, "fast": 1.8}
CLASS_NAMES = [f"{direction}_{speed}" for direction in DIRECTIONS for speed in SPEEDS]


@dataclass(frozen=True)
class MotionVideoSpec:
    """Size and length of the generated videos."""

    height: int = 64
    width: int = 80
    num_frames: int = 60
    fps: int = 30
    num_shapes: int = 3


def _shape_color(rng: np.random.Generator) -> np.ndarray:
    """A dark or a bright random colour, so shapes stand out from the mid-grey noise."""
    return rng.integers(0, 48, 3) if rng.random() < 0.5 else rng.integers(208, 256, 3)


def render_motion_video(label: int, rng: np.random.Generator, spec: MotionVideoSpec = MotionVideoSpec()) -> np.ndarray:
    """Frames uint8 [T, H, W, 3] of class ``label`` (an index into CLASS_NAMES)."""
    direction, speed = CLASS_NAMES[label].split("_")
    velocity = np.array(DIRECTIONS[direction], dtype=np.float64) * SPEEDS[speed]
    background = rng.integers(64, 192, size=(spec.height, spec.width, 3)).astype(np.float64)
    rows, cols = np.mgrid[0:spec.height, 0:spec.width]
    shapes = [
        (rng.uniform(0, spec.height), rng.uniform(0, spec.width), rng.uniform(6, 10), _shape_color(rng),
         rng.random() < 0.5)
        for _ in range(spec.num_shapes)
    ]
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), dtype=np.uint8)
    for t in range(spec.num_frames):
        frame = background + rng.normal(0, 8, size=background.shape)  # fresh sensor noise every frame
        for row0, col0, radius, color, is_disk in shapes:
            # Positions wrap around the frame, so shapes never leave the picture.
            row = (row0 + velocity[0] * t) % spec.height
            col = (col0 + velocity[1] * t) % spec.width
            d_row = np.abs((rows - row + spec.height / 2) % spec.height - spec.height / 2)
            d_col = np.abs((cols - col + spec.width / 2) % spec.width - spec.width / 2)
            inside = d_row**2 + d_col**2 <= radius**2 if is_disk else np.maximum(d_row, d_col) <= radius
            frame[inside] = color
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def make_motion_dataset(
    out_dir: str | Path,
    videos_per_class: dict[str, int] | None = None,
    spec: MotionVideoSpec = MotionVideoSpec(),
    seed: int = 0,
) -> Path:
    """Write videos and ``{split}.csv`` lists (``videos/<split>/<class>_<n>.mp4 label``) under ``out_dir``.

    ``videos_per_class`` maps split name to the number of videos per class (default train 24, val 6,
    test 6). Returns ``out_dir``; paths in the lists are relative to it (set DATA.PATH_PREFIX to it).
    """
    from hiera_video.datasets.synthetic import write_video

    out_dir = Path(out_dir)
    videos_per_class = videos_per_class or {"train": 24, "val": 6, "test": 6}
    rng = np.random.default_rng(seed)
    for split, count in videos_per_class.items():
        (out_dir / "videos" / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for label, name in enumerate(CLASS_NAMES):
            for n in range(count):
                relative = f"videos/{split}/{name}_{n:03d}.mp4"
                write_video(out_dir / relative, render_motion_video(label, rng, spec), fps=spec.fps)
                lines.append(f"{relative} {label}")
        (out_dir / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    return out_dir
