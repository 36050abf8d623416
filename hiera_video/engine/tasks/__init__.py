"""Tasks: one class per ``TASK`` value, behind the contract of :mod:`.base`.

- ``classification`` (:mod:`.classification`): supervised video classification, multi-view testing.
- ``mae`` (:mod:`.mae`): masked-autoencoder pretraining, no test stage.
- ``ava`` (:mod:`.ava`): AVA action detection, frame-mAP@0.5.
"""
from .ava import AvaDetectionTask
from .base import (
    Evaluation, StepOutput, Task, describe_model, get_task, hiera_overrides, model_input_size, register_task,
    task_class, task_names,
)
from .classification import ClassificationTask
from .mae import MaskedAutoencoderTask

__all__ = [
    "AvaDetectionTask", "ClassificationTask", "Evaluation", "MaskedAutoencoderTask", "StepOutput", "Task",
    "describe_model", "get_task", "hiera_overrides", "model_input_size", "register_task", "task_class", "task_names",
]
