"""The three-phase excursion-set model (method.md §1–2).

* :mod:`.params` — :class:`ExcursionModel`: the parameters, their checks and the JSON model file.
* :mod:`.truncation` — which region of the ``(Z1, Z2)`` plane is which phase; one-point law,
  volume fractions and thresholds.
* :mod:`.module` — :class:`ExcursionModule`: the differentiable form that calibration optimizes.
"""

from __future__ import annotations

from .module import ExcursionModule
from .params import (
    ANISOTROPY_RANGE,
    KERNEL_NAMES,
    LENGTH_SCALE_RANGE,
    M_MAX,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    N_CHI2_RANGE,
    READABLE_FORMAT_VERSIONS,
    ExcursionModel,
)
from .truncation import model_fractions, sample_marginals, thresholds_for_fractions

__all__ = [
    "ANISOTROPY_RANGE",
    "KERNEL_NAMES",
    "LENGTH_SCALE_RANGE",
    "M_MAX",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "N_CHI2_RANGE",
    "READABLE_FORMAT_VERSIONS",
    "ExcursionModel",
    "ExcursionModule",
    "model_fractions",
    "sample_marginals",
    "thresholds_for_fractions",
]
