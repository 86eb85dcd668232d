"""Two-point coverage probability functions (TPPFs) of phase indicators, method.md §4.

``C_ij(r)`` is the probability that a point lies in phase ``i`` and a point at distance ``r``
from it in phase ``j``. This package estimates it from hard (one-hot) or soft (probability) phase
indicators, in 2D and 3D, batched and differentiable (torch autograd through ``torch.fft``):

* :func:`lattice_tppf` — minus-sampling estimator ``ĉ_ij(h)`` for every lattice vector ``h`` with
  ``|h_k| <= max_lag`` (all orthants), by zero-padded FFT (no wrap-around) and analytic pair counts;
* :func:`radial_tppf` — Gaussian-kernel regression of ``ĉ_ij(h)`` over ``|h|`` to a radial curve;
* :func:`directional_tppf` — curves along each axis;
* :func:`choose_r_max` — the r_max rule; :func:`tppf_loss` — the calibration loss (Eq. 26/33);
* :class:`TPPFResult` and :func:`tppf_of_labels` — for the front ends (CSV, figure).

Decisions (what the method leaves open) are documented in ``docs/decisions/tppf.md``.

The package is split by idea: :mod:`._fft` (input handling, FFT back end, spectra, the lattice
estimate of the pairs ``i <= j``), :mod:`.estimators` (the public estimators, the loss and the
r_max rule) and :mod:`.result` (the front-end result). Import from here; the tunables
``FFT_BACKEND`` and ``_CHUNK_BYTES`` set on this package are forwarded to :mod:`._fft`, which
reads them.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import _fft

# Private names re-exported for callers of the former single module (benchmarks use _fft_len).
from ._fft import _as_batched as _as_batched
from ._fft import _fft_len as _fft_len
from ._fft import pair_indices
from .estimators import KERNEL_REACH as KERNEL_REACH
from .estimators import (
    choose_r_max,
    directional_tppf,
    lattice_tppf,
    radial_tppf,
    tppf_loss,
)
from .result import TPPFResult, tppf_of_labels

__all__ = [
    "lattice_tppf",
    "radial_tppf",
    "directional_tppf",
    "choose_r_max",
    "tppf_loss",
    "pair_indices",
    "TPPFResult",
    "tppf_of_labels",
]


def _setting(name: str) -> property:
    """A package attribute that reads and writes the setting ``name`` of :mod:`._fft`."""

    def get(self: types.ModuleType) -> Any:
        return getattr(_fft, name)

    def set_(self: types.ModuleType, value: Any) -> None:
        setattr(_fft, name, value)

    return property(
        get, set_, doc=f"``{_fft.__name__}.{name}``, read by the FFT code at call time."
    )


class _Package(types.ModuleType):
    """This package's module type: its settings are properties that forward to :mod:`._fft`.

    ``FFT_BACKEND`` and ``_CHUNK_BYTES`` live in :mod:`._fft`, whose functions read them at call
    time; as data descriptors here, ``core.tppf.FFT_BACKEND = "torch"`` (docs/decisions/tppf.md),
    reads, and pytest's ``monkeypatch.setattr`` and its undo on this package all reach them.
    """

    FFT_BACKEND = _setting("FFT_BACKEND")
    _CHUNK_BYTES = _setting("_CHUNK_BYTES")


sys.modules[__name__].__class__ = _Package
