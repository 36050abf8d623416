"""Utilities that are not part of the training loop: the synthetic motion dataset of the demo."""
