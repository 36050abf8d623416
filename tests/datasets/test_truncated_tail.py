"""A file whose index lists more frames than its data holds (a download cut short, index at the front) is
read alike in training and testing: the last frame that decodes stands in for the missing tail."""
import logging
import os

import av
import numpy as np
import pytest
import torch

from hiera_video.datasets import build_dataset
from hiera_video.datasets.decoding import open_video
from tests.datasets.test_datasets import write_list

NUM_FRAMES, HEIGHT, WIDTH = 60, 48, 64


@pytest.fixture(scope="module")
def cut_short(tmp_path_factory) -> str:
    """An H.264 MP4 with its index first (faststart) listing 60 frames, its last packet cut in half."""
    folder = tmp_path_factory.mktemp("cut")
    whole = folder / "whole.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        sizes = []
        for _ in range(NUM_FRAMES):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), "rgb24")
            for packet in stream.encode(frame):
                sizes.append(packet.size)
                container.mux(packet)
        for packet in stream.encode():
            sizes.append(packet.size)
            container.mux(packet)
    data = whole.read_bytes()
    cut = folder / "cut.mp4"
    cut.write_bytes(data[: len(data) - sizes[-1] // 2])
    return str(cut)


def test_the_last_decodable_frame_stands_in_for_the_missing_tail(cut_short, caplog):
    video = open_video(cut_short)
    assert video.num_frames == NUM_FRAMES  # the index promises all of them
    with caplog.at_level(logging.WARNING):
        frames = video.get_frames(list(range(40, NUM_FRAMES)))
    assert frames.shape[0] == 20
    stand_in = next(i for i in range(19, -1, -1) if i == 0 or not torch.equal(frames[i], frames[i - 1]))
    assert stand_in < 19 and all(torch.equal(frames[i], frames[stand_in]) for i in range(stand_in, 20))
    assert "do not decode (the file ends early)" in caplog.text and os.path.basename(cut_short) in caplog.text


def test_training_and_testing_agree_on_a_file_cut_short(cut_short, small_cfg, tmp_path):
    small_cfg.DATA.PATH_TO_DATA_DIR, small_cfg.DATA.PATH_PREFIX = str(tmp_path), os.path.dirname(cut_short)
    for split in ("train", "val"):
        write_list(tmp_path, split, ["cut.mp4 0"])
    train, test = build_dataset(small_cfg, "train"), build_dataset(small_cfg, "val")
    for _ in range(5):
        item = train[0]
        assert item["replaced"] == [] and torch.isfinite(item["clip"]).all()
    views = test[0]
    assert "error" not in views and views["views"].shape[0] == 6 and torch.isfinite(views["views"]).all()
    assert not train.failures and not test.failures
