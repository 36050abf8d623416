"""Fixtures for engine tests (see :mod:`tests.engine.fakes`)."""
import pytest

from tests.engine.fakes import MovingSquares


@pytest.fixture
def fake_data(monkeypatch):
    """Route the engine's datasets to MovingSquares (16 training videos; 12 test videos with the config's views).

    Returns the settings dict, which a test may change before running: ``failing`` (indices that fail
    to decode: test items carry an error, training items report a replacement), ``train_size``,
    ``test_size``, ``augment`` (random noise on training clips).
    """
    settings = {"failing": (), "train_size": 16, "test_size": 12, "augment": True}

    def build(cfg, split):
        if split == "train":
            return MovingSquares(settings["train_size"], "train", failing=settings["failing"],
                                 augment=settings["augment"])
        views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
        return MovingSquares(settings["test_size"], split, views, settings["failing"])

    monkeypatch.setattr("hiera_video.engine.data._build_dataset", build)
    return settings
