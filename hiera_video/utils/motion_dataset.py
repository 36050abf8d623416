"""A synthetic Kinetics-format dataset whose classes differ only in motion.

Every video shows a few striped shapes moving together over a still background, the same smooth gradient in
every video (a sky over a meadow). The class is the motion: one of four directions (right, left, down, up)
times two speeds (slow, fast). Nothing but the motion tells the classes apart: video ``n`` of every class
shows the same shapes at the same starting places (its first frame is the same in all classes), and shapes
wrap around the frame edges, so any one frame shows shapes at uniformly random places. A model must use
time.

What an MAE has to learn here is what stays and what moves: the background persists over time and is the
same everywhere, and the shapes keep their look and their velocity, so hidden parts of a clip follow from
the visible ones. (Over backgrounds of fresh noise nothing hidden is predictable: the MAE loss stays at 1.)

Videos are H.264 files written with :func:`hiera_video.datasets.synthetic.write_video`, listed in
``train.csv`` / ``val.csv`` / ``test.csv`` as ``path label`` lines (PySlowFast's Kinetics format).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}
# Pixels per source frame at 30 fps.
SPEEDS = {"slow": 0.6, "fast": 1.8}
CLASS_NAMES = [f"{direction}_{speed}" for direction in DIRECTIONS for speed in SPEEDS]
# The background stays within these grey levels; shapes are darker or brighter, so they stand out.
BACKGROUND_RANGE = (64, 192)
BACKGROUND_TOP = np.array([80.0, 120.0, 180.0])
BACKGROUND_BOTTOM = np.array([120.0, 170.0, 80.0])
# Shapes are striped, so they differ from the background in texture as well as brightness.
STRIPE_WIDTH = 3.0


@dataclass(frozen=True)
class MotionVideoSpec:
    """Size and length of the generated videos."""

    height: int = 64
    width: int = 80
    num_frames: int = 60
    fps: int = 30
    num_shapes: int = 3


def render_background(height: int, width: int) -> np.ndarray:
    """The still background of every video, float [H, W, 3]: a vertical gradient from BACKGROUND_TOP (a sky)
    to BACKGROUND_BOTTOM (a meadow), the same all the way across."""
    fraction = np.linspace(0, 1, height)[:, None, None]
    gradient = BACKGROUND_TOP + (BACKGROUND_BOTTOM - BACKGROUND_TOP) * fraction
    return np.broadcast_to(gradient, (height, width, 3)).copy()


@dataclass(frozen=True)
class Shape:
    """A disk or square of a solid colour with stripes of a second colour, at its position in frame 0."""

    row: float
    col: float
    radius: float
    color: np.ndarray
    stripe_color: np.ndarray
    stripe_angle: float
    is_disk: bool


def random_shape(rng: np.random.Generator, spec: MotionVideoSpec) -> Shape:
    """A shape anywhere in the frame, dark or bright (outside BACKGROUND_RANGE, stripes included)."""
    row, col, radius = rng.uniform(0, spec.height), rng.uniform(0, spec.width), rng.uniform(6, 10)
    dark = rng.random() < 0.5
    color = rng.integers(0, 30, 3) if dark else rng.integers(226, 256, 3)
    stripe_color = color + 30 if dark else color - 30
    return Shape(row, col, radius, color, stripe_color, rng.uniform(0, np.pi), rng.random() < 0.5)


def draw_shape(frame: np.ndarray, shape: Shape, row: float, col: float) -> None:
    """Paint ``shape`` centred at (``row``, ``col``) into ``frame`` [H, W, 3], wrapping around the edges; its
    stripes (STRIPE_WIDTH pixels) move with it."""
    height, width = frame.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    # Signed offsets from the centre, the shorter way round the wrapped frame.
    d_row = (rows - row + height / 2) % height - height / 2
    d_col = (cols - col + width / 2) % width - width / 2
    if shape.is_disk:
        inside = d_row**2 + d_col**2 <= shape.radius**2
    else:
        inside = np.maximum(np.abs(d_row), np.abs(d_col)) <= shape.radius
    across = d_row * np.sin(shape.stripe_angle) + d_col * np.cos(shape.stripe_angle)
    stripes = np.floor(across / STRIPE_WIDTH) % 2 == 1
    frame[inside] = shape.color
    frame[inside & stripes] = shape.stripe_color


def render_motion_video(label: int, rng: np.random.Generator, spec: MotionVideoSpec = MotionVideoSpec()) -> np.ndarray:
    """Frames uint8 [T, H, W, 3] of class ``label`` (an index into CLASS_NAMES).

    Everything random is drawn from ``rng`` before the class is looked at, so two calls with equal
    generators and different labels give the same first frame.
    """
    background = render_background(spec.height, spec.width)
    shapes = [random_shape(rng, spec) for _ in range(spec.num_shapes)]
    direction, speed = CLASS_NAMES[label].split("_")
    velocity = np.array(DIRECTIONS[direction], dtype=np.float64) * SPEEDS[speed]
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), dtype=np.uint8)
    for t in range(spec.num_frames):
        frame = background.copy()
        for shape in shapes:
            # Positions wrap around the frame, so shapes never leave the picture.
            draw_shape(frame, shape, (shape.row + velocity[0] * t) % spec.height, (shape.col + velocity[1] * t) % spec.width)
        frames[t] = np.round(frame).astype(np.uint8)
    return frames


def make_motion_dataset(
    out_dir: str | Path,
    videos_per_class: dict[str, int] | None = None,
    spec: MotionVideoSpec = MotionVideoSpec(),
    seed: int = 0,
) -> Path:
    """Write videos and ``{split}.csv`` lists (``videos/<split>/<class>_<n>.mp4 label``) under ``out_dir``.

    ``videos_per_class`` maps split name to the number of videos per class (default train 24, val 6,
    test 6). Video ``n`` of every class shows the same scene (background, shapes, starting positions),
    only moving differently: what a scene looks like says nothing about its class, even to a model that
    memorizes the training videos. Returns ``out_dir``; paths in the lists are relative to it (set
    DATA.PATH_PREFIX to it).
    """
    from hiera_video.datasets.synthetic import write_video

    out_dir = Path(out_dir)
    videos_per_class = videos_per_class or {"train": 24, "val": 6, "test": 6}
    rng = np.random.default_rng(seed)
    for split, count in videos_per_class.items():
        (out_dir / "videos" / split).mkdir(parents=True, exist_ok=True)
        scene_seeds = rng.integers(2**63, size=count)
        lines = []
        for label, name in enumerate(CLASS_NAMES):
            for n in range(count):
                relative = f"videos/{split}/{name}_{n:03d}.mp4"
                frames = render_motion_video(label, np.random.default_rng(scene_seeds[n]), spec)
                write_video(out_dir / relative, frames, fps=spec.fps)
                lines.append(f"{relative} {label}")
        (out_dir / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    return out_dir
