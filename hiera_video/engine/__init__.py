"""The engine: training and testing loops, checkpoints, optimizers, distributed helpers and logging.

``run(cfg)`` (:mod:`launch`) is what ``tools/run_net.py`` calls; ``train`` / ``train_one_epoch``
(:mod:`trainer`) and ``test`` / ``evaluate`` (:mod:`tester`) are plain functions to read top to bottom.
"""
from . import ava_task  # noqa: F401  (registers TASK "ava")
from .checkpoint import find_latest_checkpoint, load_training_checkpoint, save_checkpoint
from .launch import run
from .tasks import Task, get_task, register_task
from .tester import evaluate, evaluate_classifier, test
from .trainer import train, train_one_epoch

__all__ = [
    "Task", "evaluate", "evaluate_classifier", "find_latest_checkpoint", "get_task", "load_training_checkpoint",
    "register_task", "run", "save_checkpoint", "test", "train", "train_one_epoch",
]
