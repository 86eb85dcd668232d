"""Connectivity of a phase: Euler number density and the percolating fraction.

First-order descriptors (volume fraction, S_V, chords) do not see whether a phase is one connected
network or a cloud of islands: twins that match them can carry very different transport (the
excursion set of a Gaussian field near 12 % volume fraction barely percolates, a rock's pore space
does). Two cheap, standard measures of connectivity:

* **Euler number density** χ (2D: per area, 3D: per volume) — the integral-geometric Minkowski
  functional: in 2D components − holes, in 3D components − tunnels + cavities, per unit area or
  volume. It is additive, so it is estimated without bias from a window by counting cells of the
  voxel complex: with the phase's pixels as vertices, its face-adjacent pairs as edges, its full
  2×2 squares as faces and full 2×2×2 cubes as cells, ``χ = V − E + F (− C in 3D)`` — the Euler
  number of the phase with 4-connectivity (2D) / 6-connectivity (3D), the convention of
  ``skimage.measure.euler_number(connectivity=1)`` (tested equal). The density is each count over
  the number of window positions at which its cell fits (minus sampling), so the expectation is the
  stationary density, whatever the window. The same sums over products of indicators give a
  differentiable version for soft phase maps (:func:`soft_euler_density_2d`), cheap enough for a
  calibration loss.
* **Percolating fraction** along an axis — the share of the phase's voxels in face-connected
  clusters that touch both end planes (0: the phase does not percolate; 1: all of it carries flux).

Scale of χ for comparisons: :func:`topology_density` counts the components and holes per area of 2D
sections, the number of topological features that χ is the net of; a relative error of χ against it
says what share of the features a twin gets wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ._common import DescriptorError, as_index_array, axis_index, spatial_view

__all__ = [
    "euler_number",
    "euler_density",
    "topology_density",
    "percolating_fraction",
    "soft_euler_density_2d",
]


def _cells(b: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """(count, sign) of every cell type of the voxel complex of boolean ``b`` (2D or 3D), each
    count over all positions at which the cell fits inside the array."""
    nd = b.ndim
    out = [(b, 1)]

    def shift(x: np.ndarray, ax: int, o: int) -> np.ndarray:
        sl = [slice(None)] * x.ndim
        sl[ax] = slice(o, x.shape[ax] - 1 + o)
        return x[tuple(sl)]

    for a in range(nd):  # edges
        out.append((shift(b, a, 0) & shift(b, a, 1), -1))
    for a in range(nd):  # squares
        for c in range(a + 1, nd):
            s = [shift(shift(b, a, i), c, j) for i in (0, 1) for j in (0, 1)]
            out.append((s[0] & s[1] & s[2] & s[3], 1))
    if nd == 3:
        cube = None
        for i in (0, 1):
            for j in (0, 1):
                for k in (0, 1):
                    v = shift(shift(shift(b, 0, i), 1, j), 2, k)
                    cube = v if cube is None else cube & v
        out.append((cube, -1))
    return out


def euler_number(indices: Any, phase: int, n_phases: int | None = None) -> int:
    """Euler number of one phase of a 2D or 3D image, the phase padded with a background border.

    4-connectivity (2D) / 6-connectivity (3D) of the phase, as
    ``skimage.measure.euler_number(mask, connectivity=1)``.
    """
    arr, k = as_index_array(indices, n_phases)
    if arr.ndim not in (2, 3):
        raise DescriptorError(f"euler_number needs a 2D or 3D image, got shape {arr.shape}")
    b = np.pad(arr == int(phase), 1)
    return int(sum(sign * int(c.sum()) for c, sign in _cells(b)))


def _density(b: np.ndarray) -> float:
    """Euler density of boolean ``b`` (per pixel / voxel), minus-sampling estimator."""
    if min(b.shape) < 2:
        raise DescriptorError(
            f"the Euler density needs at least 2 pixels along every axis, got shape {b.shape}"
        )
    return float(sum(sign * c.mean() for c, sign in _cells(b)))


def euler_density(
    indices: Any,
    phase: int,
    *,
    n_phases: int | None = None,
    sections: bool = False,
    voxel_size: float | None = None,
) -> float:
    """Euler number per unit area (2D, sections) or volume (3D) of one phase.

    Parameters
    ----------
    indices : array
        Phase indices: a 2D image, a 3D volume, or a stack of sections ``(N, H, W)`` with
        ``sections=True`` (then the mean over the sections, in 1/area).
    phase : int
        Phase index.
    n_phases : int, optional
        Number of phases (for index validation).
    sections : bool
        Treat a 3D array as a stack of 2D sections.
    voxel_size : float, optional
        Pixel / voxel edge; the density is then per unit² (2D) or unit³ (3D).

    Returns
    -------
    float
        Unbiased estimate of the stationary density (4-/6-connectivity of the phase).
    """
    arr, k = as_index_array(indices, n_phases)
    if not 0 <= int(phase) < k:
        raise DescriptorError(f"phase must be in 0..{k - 1}, got {phase}")
    batch, dim = spatial_view(arr, sections)
    vals = [_density(s == int(phase)) for s in batch]
    d = float(np.mean(vals))
    if voxel_size is not None:
        d /= float(voxel_size) ** dim
    return d


def topology_density(sections: Any, phase: int, n_phases: int | None = None) -> float:
    """Components plus holes of a phase per pixel in 2D sections (the scale of χ's errors).

    Components are 4-connected clusters of the phase; holes are 8-connected clusters of the rest
    that do not touch the border of the section. ``χ = components − holes`` away from the border,
    so this is the number of topological features that χ is the net of.
    """
    arr, k = as_index_array(sections, n_phases)
    batch, dim = spatial_view(arr, arr.ndim == 3)
    if dim != 2:
        raise DescriptorError("topology_density works on 2D sections")
    total = 0
    for s in batch:
        b = s == int(phase)
        total += ndi.label(b)[1]
        lab, n = ndi.label(~b, structure=np.ones((3, 3), bool))
        if n:
            border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
            total += n - int(np.count_nonzero(border))
    return float(total) / float(batch[0].size * len(batch))


def percolating_fraction(
    indices: Any, phase: int, axis: int | str = 0, *, n_phases: int | None = None
) -> float:
    """Share of a phase's voxels in face-connected clusters touching both end planes along ``axis``.

    Returns 0 for a phase that does not percolate along ``axis``, NaN for an absent phase.
    """
    arr, k = as_index_array(indices, n_phases)
    if arr.ndim not in (2, 3):
        raise DescriptorError(f"percolating_fraction needs a 2D or 3D image, got {arr.shape}")
    ax = axis_index(axis, arr.ndim)
    b = np.moveaxis(arr == int(phase), ax, 0)
    n_phase = int(b.sum())
    if n_phase == 0:
        return float("nan")
    lab, n = ndi.label(b)
    if n == 0:
        return 0.0
    both = np.intersect1d(np.unique(lab[0]), np.unique(lab[-1]))
    both = both[both > 0]
    if both.size == 0:
        return 0.0
    return float(np.isin(lab, both).sum()) / n_phase


def soft_euler_density_2d(indicators: Any) -> Any:
    """Differentiable Euler density (per pixel) of soft phase maps ``(B, k, H, W)`` → ``(k,)``.

    The expectation of ``V − E + F`` per position with products of soft indicators in place of the
    boolean ``and``: equal to :func:`euler_density` for hard (0/1) maps, and smooth in the
    indicators, so a calibration loss can ask for the data's connectivity.
    """
    x = indicators
    e = x[..., :, 1:] * x[..., :, :-1]
    f = x[..., 1:, :] * x[..., :-1, :]
    sq = e[..., 1:, :] * e[..., :-1, :]
    dims = (0, 2, 3)
    return x.mean(dims) - e.mean(dims) - f.mean(dims) + sq.mean(dims)
