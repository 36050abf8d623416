"""Fixtures for model tests."""
import pytest

from .oracle import import_official


@pytest.fixture(scope="session")
def official():
    """The official ``hiera`` package, skipped with a reason when the dev extra is missing."""
    return import_official()
