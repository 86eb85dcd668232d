"""Calibration of the excursion-set model from 2D sections (method.md §5).

* :class:`CalibrationConfig` — every setting, with ``"quick"`` and ``"paper"`` presets.
* :class:`Calibration` — Algorithms 1–3 as one resumable engine; ``run()`` yields :class:`Progress`.
* :func:`calibrate` — one call from a label image to a calibrated :class:`ExcursionModel`.
* :func:`reduce_to_low` — high → low-parametric kernels (covariance family fit).
* :func:`fit_anisotropy` — the factor b along z from chord length distributions (Eq. 40).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .anisotropy import fit_anisotropy, fit_anisotropy_to_model
from .config import PRESETS, CalibrationConfig
from .data import PreparedData, prepare_data, refine_anisotropy

__all__ = [
    "CalibrationConfig",
    "PRESETS",
    "Calibration",
    "Progress",
    "calibrate",
    "prepare_data",
    "PreparedData",
    "fit_anisotropy",
    "fit_anisotropy_to_model",
    "refine_anisotropy",
    "reduce_to_low",
]


def __getattr__(name: str) -> Any:
    # The engine pulls in torch and the model; import it only when asked for.
    if name in ("Calibration", "Progress", "CalibrationWarning"):
        from . import loop

        return getattr(loop, name)
    if name == "reduce_to_low":
        from .lowparam import reduce_to_low

        return reduce_to_low
    raise AttributeError(name)


def calibrate(
    image: Any,
    phases: Any = None,
    axis: str | int = "z",
    config: CalibrationConfig | None = None,
    progress: Callable[[Any], Any] | None = None,
    *,
    voxel_size: Any = None,
    fit_b: bool = True,
) -> Any:
    """Calibrate a model on a label image or stack and return the best :class:`ExcursionModel`.

    Parameters
    ----------
    image : LabelImage or ndarray
        2D image, or 3D stack used as sections normal to ``axis``.
    phases : str or sequence or PhaseMap, optional
        Label of each phase (2 or 3 phases).
    axis : {"z", "y", "x"}
        Stack axis normal to the sections; with ``"z"`` b is fitted from the stack (Eq. 40).
    config : CalibrationConfig, optional
        Default: ``CalibrationConfig.preset("quick")``.
    progress : callable, optional
        Called with every :class:`Progress` record; returning ``False`` cancels (best model kept).
    voxel_size : float or tuple, optional
        Overrides the image's voxel size.
    fit_b : bool
        Fit the anisotropy factor from a 3D stack sliced normal to z: Eq. 40 on the stack, then
        refined with the calibrated model (:func:`refine_anisotropy`).

    Returns
    -------
    ExcursionModel
        The final model (the low-parametric one for ``model="low"``/``"both"``).
    """
    from .loop import Calibration

    data = prepare_data(image, phases, axis, fit_b=fit_b, voxel_size=voxel_size)
    cfg = config if config is not None else CalibrationConfig.preset("quick")
    cal = Calibration.from_prepared(data, cfg)
    for rec in cal.run():
        if progress is not None and progress(rec) is False:
            cal.cancel()
    model = cal.models.get("low" if cfg.model in ("low", "both") else "high", cal.best_model)
    if fit_b and cal.stop_reason != "cancelled":
        model = refine_anisotropy(model, data, seed=cfg.seed)
    return model
