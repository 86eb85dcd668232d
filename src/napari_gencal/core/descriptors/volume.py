"""Volume (area) fractions of the phases."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import as_index_array, spatial_view

__all__ = ["volume_fraction"]


def volume_fraction(
    indices: Any, n_phases: int | None = None, *, sections: bool = False
) -> np.ndarray:
    """Fraction of the window occupied by each phase (method.md §4, Eq. 22).

    Parameters
    ----------
    indices : ndarray or Tensor
        Phase indices ``0 .. k-1``: a 2D image ``(y, x)``, a 3D volume ``(z, y, x)``, or a stack of
        2D sections ``(N, H, W)`` with ``sections=True``.
    n_phases : int, optional
        Number of phases ``k`` (default: largest index + 1).
    sections : bool
        Treat the first axis as a batch of 2D sections. The result is the mean over the sections
        (sections of one size: identical to pooling all pixels).

    Returns
    -------
    ndarray, shape (k,)
        Volume fractions; they sum to 1.
    """
    arr, k = as_index_array(indices, n_phases)
    batch, _ = spatial_view(arr, sections)
    # One boolean pass per phase: no int64 copy of a large volume (np.bincount would make one).
    counts = np.array([np.count_nonzero(batch == i) for i in range(k)], dtype=np.float64)
    return counts / batch.size
