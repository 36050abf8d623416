"""The engine: training and testing loops, checkpoints, optimizers, distributed helpers and logging.

``run(cfg)`` (:mod:`launch`) is what ``tools/run_net.py`` calls; ``train`` / ``train_one_epoch``
(:mod:`trainer`) and ``test`` (:mod:`tester`) are plain functions to read top to bottom. They talk to the
job kind only through the task contract of :mod:`tasks` (model, loaders, training step, evaluation).
"""
from .checkpoint import find_latest_checkpoint, load_training_checkpoint, save_checkpoint
from .launch import JobResult, run
from .tasks import Evaluation, StepOutput, Task, get_task, register_task
from .tester import test
from .trainer import TrainResult, train, train_one_epoch

__all__ = [
    "Evaluation", "JobResult", "StepOutput", "Task", "TrainResult", "find_latest_checkpoint", "get_task",
    "load_training_checkpoint", "register_task", "run", "save_checkpoint", "test", "train", "train_one_epoch",
]
