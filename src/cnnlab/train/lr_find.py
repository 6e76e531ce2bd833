"""The learning-rate finder of ``lr_find`` (``cnnlab train --lr find``): Lightning's ``Tuner.lr_find``.

A range test (fastai's ``lr_find``): from a very small learning rate, the rate grows exponentially for a
hundred steps while the training loss is recorded; the suggestion is where the smoothed loss falls
fastest. The weights are restored afterwards, so training starts from the same initial weights. With
several parameter groups the test moves them all together; the suggestion becomes ``lr`` (the head's), and
the backbone keeps ``lr * backbone_lr_mult``. ``lr_find.png`` shows the curve with the suggestion marked.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import save_figure
from ..errors import ArgumentError, TrainingError
from .config import TrainConfig

__all__ = ["FIGURE", "LrFinding", "check_lr_find", "find_lr", "use_found_lr"]

#: The finder's figure in the run folder.
FIGURE = "lr_find.png"
#: Steps of the range test (Lightning's and fastai's default).
STEPS = 100
MIN_LR, MAX_LR = 1e-7, 1.0


@dataclass
class LrFinding:
    """What the learning-rate finder found.

    Attributes:
        suggestion: The suggested learning rate.
        lrs: The learning rates tried.
        losses: The smoothed training loss at each.
        figure: ``lr_find.png``.
    """

    suggestion: float
    lrs: list[float]
    losses: list[float]
    figure: Path

    def notice(self) -> str:
        """One line for the user."""
        return f"learning rate {self.suggestion:.3g}, suggested by the learning-rate finder ({self.figure})"


def check_lr_find(cfg: TrainConfig) -> None:
    """Refuse ``lr_find`` where no learning rate is searched for: a logistic-regression head is fitted in
    closed form.

    Raises:
        ArgumentError: naming ``lr`` and the fix.
    """
    from ..models.surgery import HeadKind

    if cfg.lr_find and cfg.lr is None and cfg.head is HeadKind.LOGREG and cfg.transfer.value == "features":
        raise ArgumentError("find: the logreg head is fitted in closed form, without a learning rate; give a "
                            "number or use `head` linear", param="lr")


def find_lr(trainer: Any, module: Any, datamodule: Any, run_dir: Path) -> LrFinding:
    """Run the range test on ``module`` with ``trainer`` (a Trainer used for nothing else), draw the figure.

    Args:
        trainer: A fresh Lightning Trainer for the run (without logger or progress bar).
        module: The run's LightningModule; its weights are the same afterwards, its optimizer state is not
            to be reused (build the training module again).
        datamodule: The run's training data.
        run_dir: The run folder (``lr_find.png`` goes there).

    Returns:
        The suggestion and the curve.

    Raises:
        TrainingError: The loss diverged before the finder could suggest a rate.
    """
    from lightning.pytorch.tuner import Tuner

    from ..report.plots import lr_find_figure

    with warnings.catch_warnings():
        # The finder restores the checkpoint it has just written itself: a file of this run, not untrusted.
        warnings.filterwarnings("ignore", message=r".*weights_only.* was not set")
        finder = Tuner(trainer).lr_find(module, datamodule=datamodule, min_lr=MIN_LR, max_lr=MAX_LR,
                                        num_training=STEPS, update_attr=False)
    suggestion = finder.suggestion() if finder is not None else None
    if finder is None or suggestion is None or not math.isfinite(suggestion):
        raise TrainingError("find: the learning-rate finder found no rate (too few steps before the loss "
                            "diverged); give a number", param="lr")
    lrs = [float(v) for v in finder.results["lr"]]
    losses = [float(v) for v in finder.results["loss"]]
    figure = save_figure(run_dir / FIGURE, lr_find_figure(lrs, losses, float(suggestion)))
    return LrFinding(float(suggestion), lrs, losses, figure)


def use_found_lr(cfg: TrainConfig, trainer: Any, setup: Any, notices: list[str]) -> TrainConfig:
    """Run the finder on a run's set-up and return its config with the suggestion as ``lr``.

    The seeds are set again afterwards, so that training from the suggestion draws the same random
    numbers as a run given that ``lr`` directly (the config it records reruns to the same metrics).

    Args:
        cfg: The run's options.
        trainer: A Trainer for the finder alone (no logger, no progress bar, at least :data:`STEPS` epochs).
        setup: The run's :class:`~cnnlab.train.run.TrainingSetup`; build it again afterwards (the finder's
            steps leave optimizer and metric state behind; the weights are restored).
        notices: Where to say which rate was found.

    Returns:
        ``cfg`` with ``lr`` the suggestion.
    """
    import lightning as L

    finding = find_lr(trainer, setup.module, setup.datamodule, cfg.run_dir)
    notices.append(finding.notice())
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    return cfg.replace(lr=finding.suggestion)
