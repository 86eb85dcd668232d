"""Progress records, warnings and data checks of a calibration run (:mod:`.loop`'s vocabulary).

:class:`Progress` is what every front end shows per optimizer step; :func:`check_stationarity`
warns about graded data before a run starts.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "Progress",
    "CalibrationWarning",
    "check_stationarity",
    "MAX_DATA_SECTIONS",
    "STATIONARITY_TOLERANCE",
]

#: Largest number of data sections used for the data TPPF and descriptors (a random subset beyond).
MAX_DATA_SECTIONS = 64
#: A volume-fraction change across the image larger than this (absolute) triggers a warning.
STATIONARITY_TOLERANCE = 0.1


class CalibrationWarning(UserWarning):
    """Something about the data or the run that the user should know (e.g. non-stationarity)."""


@dataclass
class Progress:
    """One record per optimizer step (what a progress bar or the napari widget shows).

    Attributes
    ----------
    step, total_steps : int
        Steps done (1-based after this record) and the step budget of the current stage.
    epoch : int
        Epoch of the training phase (0 during pre-training).
    phase : str
        ``"pretrain-model"``, ``"pretrain-disc"``, ``"train"`` or ``"done"``.
    stage : str
        ``"high"`` or ``"low"`` (which parametrization is calibrated).
    losses : dict
        ``tppf``, ``adv``, ``disc``, ``total`` of this step (NaN where not computed).
    descriptors : dict or None
        Latest evaluation of hard-threshold sections: ``volume_fraction`` and
        ``specific_surface_area`` lists (per phase) and the data's, as ``data_*``.
    score, best_score : float or None
        Latest and best evaluation score (sum of the mean absolute errors).
    new_best : bool
        This step's evaluation found new best parameters.
    disc_skipped : bool
        The discriminator update was skipped by the skip rule.
    elapsed, remaining : float
        Seconds since start (resumes included) and an upper estimate of the seconds left.
    done : bool
        Last record of the run.
    stop_reason : str or None
        Why the run ended (``"max_epochs"``, ``"early_stopping"``, ``"time_limit"``,
        ``"cancelled"``, or a non-finite loss with its values).
    message : str or None
        Something to tell the user at this point (e.g. the phase order the pipeline chose).
    """

    step: int
    total_steps: int
    epoch: int
    phase: str
    stage: str
    losses: dict[str, float]
    descriptors: dict[str, Any] | None = None
    score: float | None = None
    best_score: float | None = None
    new_best: bool = False
    disc_skipped: bool = False
    elapsed: float = 0.0
    remaining: float | None = None
    done: bool = False
    stop_reason: str | None = None
    message: str | None = None

    @property
    def fraction(self) -> float:
        """Share of the budget used, in [0, 1]: by time when ``remaining`` is known (a time
        limit usually ends a run before the step budget), else by steps."""
        if self.done:
            return 1.0
        if self.remaining is not None and self.elapsed + self.remaining > 0:
            return min(1.0, self.elapsed / (self.elapsed + self.remaining))
        return min(1.0, self.step / max(1, self.total_steps))

    def summary(self) -> str:
        """One line for logs and progress bars."""
        parts = [f"{self.stage} {self.phase} step {self.step}/{self.total_steps}"]
        if self.epoch:
            parts.append(f"epoch {self.epoch}")
        parts += [f"{k} {v:.4g}" for k, v in self.losses.items() if math.isfinite(v)]
        if self.best_score is not None:
            parts.append(f"best {self.best_score:.4f}")
        if self.stop_reason:
            parts.append(f"stopped: {self.stop_reason}")
        return ", ".join(parts)


def check_stationarity(
    sections: np.ndarray, n_phases: int, tolerance: float = STATIONARITY_TOLERANCE
) -> list[str]:
    """Linear trends of the volume fractions across the image (and across the stack).

    The image is cut into 8 strips along each axis (and the stack into 8 groups of sections); a
    straight line is fitted to each phase's strip fractions. A change of more than ``tolerance``
    from the first to the last strip that also exceeds four standard errors of the fitted slope is
    reported: a graded layer is no stationary random set.

    Returns
    -------
    list of str
        One message per offending axis and phase (empty when the data look stationary).
    """
    from scipy.stats import linregress

    msgs = []
    n, h, w = sections.shape
    axes = {"y": 1, "x": 2}
    if n >= 8:
        axes["section index"] = 0
    for name, ax in axes.items():
        parts = np.array_split(np.arange(sections.shape[ax]), 8)
        if min(len(p) for p in parts) == 0:
            continue
        t = np.array([p.mean() for p in parts]) / max(1, sections.shape[ax] - 1)
        for i in range(n_phases):
            f = np.array([np.mean(np.take(sections, p, axis=ax) == i) for p in parts])
            fit = linregress(t, f)
            change = fit.slope * (t[-1] - t[0])
            # Large and clearly beyond the strips' scatter (t > 4): random fluctuations of a
            # small stationary image rarely pass both.
            significant = fit.stderr == 0 or abs(fit.slope) > 4 * fit.stderr
            if abs(change) > tolerance and significant:
                msgs.append(
                    f"phase {i} volume fraction changes by {change:+.2f} along {name} "
                    f"(from {f[0]:.2f} to {f[-1]:.2f}); the model assumes a stationary structure — "
                    "crop a homogeneous region or calibrate the layers separately"
                )
    return msgs


def _package_versions() -> dict[str, str]:
    from ... import __version__

    return {
        "napari_gencal": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
