"""The demo's motion videos: a still textured background, and classes a single frame cannot tell apart."""
import numpy as np

from hiera_video.datasets.decoding import open_video
from hiera_video.datasets.synthetic import write_video
from hiera_video.utils.motion_dataset import BACKGROUND_RANGE, CLASS_NAMES, MotionVideoSpec, render_motion_video

SPEC = MotionVideoSpec(num_frames=12)


def background_pixels(frames: np.ndarray) -> np.ndarray:
    """[H, W] True where no shape covers the pixel in any frame (shapes are darker or brighter than it)."""
    low, high = BACKGROUND_RANGE
    return ((frames >= low) & (frames <= high)).all(axis=(0, 3))


def test_the_background_is_textured_and_stays_put_in_the_written_video(tmp_path):
    rendered = render_motion_video(3, np.random.default_rng(0), SPEC)
    background = background_pixels(rendered)
    assert background.mean() > 0.3
    assert rendered[0][background].std() > 15  # a texture, not one flat colour
    write_video(tmp_path / "clip.mp4", rendered, fps=SPEC.fps)
    decoded = open_video(tmp_path / "clip.mp4").get_frames_array(list(range(SPEC.num_frames))).astype(np.float64)
    frame_to_frame = np.abs(np.diff(decoded, axis=0)).mean(axis=-1)  # [T - 1, H, W] grey levels
    # Fresh noise of std 8 in every frame would give about 9 here.
    assert frame_to_frame[:, background].mean() < 3


def test_a_single_frame_does_not_tell_the_class():
    # Everything random is drawn before the class is used: equal generators give one first frame for all
    # classes, which only part ways as the shapes move.
    videos = [render_motion_video(label, np.random.default_rng(7), SPEC) for label in range(len(CLASS_NAMES))]
    assert all(np.array_equal(video[0], videos[0][0]) for video in videos)
    assert len({video[-1].tobytes() for video in videos}) == len(CLASS_NAMES)
