"""Errors a training run reports to the user as one clear line."""

from __future__ import annotations

from nnspec.errors import UserError


class TrainingError(UserError):
    """A run could not start or could not go on (bad settings, missing run directory, NaN loss)."""


class NonFiniteLoss(TrainingError):
    """The training loss became NaN or infinite; ``epoch`` and ``step`` are 1-based."""

    def __init__(self, epoch: int, step: int, steps: int, value: float, step_range: tuple[int, int] | None = None):
        self.epoch, self.step, self.steps, self.value = epoch, step, steps, value
        where = f"step {step}" if not step_range or step_range[0] == step_range[1] else f"steps {step_range[0]}-{step_range[1]}"
        super().__init__(f"the training loss became {value} at epoch {epoch}, {where} (of {steps})")
