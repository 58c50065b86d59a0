"""Tasks: how a batch becomes losses and an evaluation pass becomes metrics.

The loop is one piece of code for every kind of learning; a task plugs into it. Register a new
task in TASKS; a model class may declare the task it needs with a `dlrun_task` class attribute.
"""

from __future__ import annotations

from dlrun.tasks.adversarial import AdversarialTask
from dlrun.tasks.base import Step, Task
from dlrun.tasks.classification import ClassificationTask
from dlrun.tasks.reconstruction import ReconstructionTask
from dlrun.tasks.regression import RegressionTask

TASKS: dict[str, type[Task]] = {
    ClassificationTask.name: ClassificationTask,
    RegressionTask.name: RegressionTask,
    ReconstructionTask.name: ReconstructionTask,
    AdversarialTask.name: AdversarialTask,
}

__all__ = [
    "TASKS",
    "Step",
    "Task",
    "ClassificationTask",
    "RegressionTask",
    "ReconstructionTask",
    "AdversarialTask",
]
