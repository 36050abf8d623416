"""Fixtures for the inference tests: a tiny Hiera saved as a toolkit and as an official checkpoint, tiny
generated clips (one of them broken), and a "colour" classifier whose answer a test can predict."""
import numpy as np
import pytest
import torch

from hiera_video.config import load_config
from hiera_video.datasets.synthetic import numbered_frames, write_video
from hiera_video.engine.checkpoint import save_checkpoint
from hiera_video.engine.tasks import get_task

CLASS_NAMES = ["red", "green", "blue"]
# A tiny video Hiera: 8 frames of 64x64, 16 channels, one block per stage; 3x3 views of 8 frames.
TINY_OPTS = [
    "MODEL.NUM_CLASSES", "3", "HIERA.EMBED_DIM", "16", "HIERA.NUM_HEADS", "1", "HIERA.STAGES", "[1, 1, 1, 1]",
    "DATA.NUM_FRAMES", "8", "DATA.SAMPLING_RATE", "2", "DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64",
    "DATA.TRAIN_JITTER_SCALES", "[64, 80]", "DATA.DECODE_TIMEOUT", "0.0",
    "TEST.NUM_ENSEMBLE_VIEWS", "3", "TEST.NUM_SPATIAL_CROPS", "3", "TEST.BATCH_SIZE", "4",
]


def tiny_cfg(*extra_opts):
    """The tiny model's config (CPU, no decode watchdog)."""
    return load_config(None, TINY_OPTS + list(extra_opts))


def coloured_frames(colours, seconds_each, fps=30, height=48, width=64):
    """uint8 ``[T, H, W, 3]``: ``seconds_each`` seconds of each solid RGB colour in turn."""
    frames = [np.full((int(seconds_each * fps), height, width, 3), colour, dtype=np.uint8) for colour in colours]
    return torch.from_numpy(np.concatenate(frames))


class MeanColourClassifier(torch.nn.Module):
    """Logits = 10 x the mean of each normalized colour channel: a red clip is class 0 ("red"), etc."""

    num_classes = 3

    def forward(self, clips):
        return clips.mean(dim=(2, 3, 4)) * 10.0  # [B, C, T, H, W] -> [B, 3]


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny Hiera (random weights, fixed seed) in eval mode."""
    torch.manual_seed(0)
    model = get_task(tiny_cfg()).build_model().eval()
    # Random init is near-uniform on 3 classes; a larger head spreads the scores so rankings are stable.
    with torch.no_grad():
        model.head.projection.weight.mul_(50.0)
    return model


@pytest.fixture(scope="session")
def toolkit_checkpoint(tmp_path_factory, tiny_model):
    """A toolkit checkpoint (model_state + cfg YAML + class names), written by the engine's save_checkpoint."""
    folder = tmp_path_factory.mktemp("job")
    optimizer = torch.optim.SGD(tiny_model.parameters(), lr=0.1)
    return str(save_checkpoint(str(folder), 0, tiny_model, optimizer, None, tiny_cfg().dump(), CLASS_NAMES))


@pytest.fixture(scope="session")
def official_checkpoint(tmp_path_factory, tiny_model):
    """The same weights the way the official release stores them: only ``{"model_state": ...}``."""
    path = tmp_path_factory.mktemp("official") / "hiera_tiny.pth"
    torch.save({"model_state": tiny_model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    """Paths: ``clip`` (3 s, 64x48, 30 fps), ``short`` (1 s), ``broken`` (not a video), ``empty`` (0 bytes),
    ``colours`` (2 s red, 2 s green, 2 s blue) and ``large`` (2 s at 160x120, for drawn labels)."""
    folder = tmp_path_factory.mktemp("videos")
    paths = {
        "clip": write_video(folder / "clip.mp4", numbered_frames(90, 48, 64, seed=1)),
        "short": write_video(folder / "short.mp4", numbered_frames(30, 48, 64, seed=2)),
        "colours": write_video(folder / "colours.mp4", coloured_frames([(255, 0, 0), (0, 255, 0), (0, 0, 255)], 2)),
        "large": write_video(folder / "large.mp4", numbered_frames(60, 120, 160, seed=3)),
    }
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (folder / "empty.mp4").write_bytes(b"")
    paths.update(broken=str(folder / "broken.mp4"), empty=str(folder / "empty.mp4"))
    return paths


@pytest.fixture(scope="session")
def classifier(toolkit_checkpoint):
    """VideoClassifier of the toolkit checkpoint, on CPU in float32 (tests compare its scores exactly)."""
    from hiera_video import VideoClassifier

    return VideoClassifier.from_checkpoint(toolkit_checkpoint, device="cpu", precision="fp32")
