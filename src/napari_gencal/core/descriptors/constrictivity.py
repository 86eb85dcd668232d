"""Constrictivity β = (r_min / r_max)² of a phase in a direction (method.md §6).

* **Continuous pore-size distribution** (opening granulometry with balls, Münch & Holzer 2008):
  ``CPSD(r)`` = share of the phase volume covered by the morphological opening with the digital
  ball of radius ``r`` (voxels with squared distance ≤ r²). ``r_max`` is its median:
  the radius at which ``CPSD`` falls to 1/2.
* **Simulated mercury intrusion** from the inlet plane (index 0 along the axis): erode the phase by
  the ball (centres where a ball of radius ``r`` fits), keep the centres connected to the inlet
  plane (face connectivity), dilate back. ``MIP(r)`` = intruded share of the phase volume;
  ``r_min`` is its median. ``MIP <= CPSD``, so ``r_min <= r_max`` and ``0 <= β <= 1``.

Both medians are found by bisection over radii on a grid (default step 0.5 voxel) and refined by
linear interpolation between the bracketing radii. Erosion and dilation use Euclidean distance
transforms (the "EDT threshold" form of the ball opening). If less than half of the phase is
reachable from the inlet even with the smallest ball, ``r_min = 0`` and β = 0 (strong bottleneck /
not percolating). Balls may protrude beyond the window (the window boundary is not a wall).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ._common import DescriptorError, as_index_array, axis_index, isotropic_spacing
from ._edt import MAX_CAP, dilate_ball, squared_edt

__all__ = ["Constrictivity", "constrictivity", "pore_size_distribution", "intrusion_distribution"]


@dataclass
class Constrictivity:
    """Constrictivity of one phase along one axis.

    Attributes
    ----------
    beta : float
        ``(r_min / r_max)²`` in [0, 1].
    r_min, r_max : float
        Medians of the intrusion and continuous pore-size distributions (voxels, or unit with
        ``voxel_size``).
    percolates : bool
        Whether the smallest ball reaches half the phase volume from the inlet (else r_min = 0).
    phase, axis : int
    unit : str
    """

    beta: float
    r_min: float
    r_max: float
    percolates: bool
    phase: int
    axis: int
    unit: str = "voxel"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return asdict(self)


def _median_radius(
    frac: Callable[[float], float], radii: np.ndarray, cache: dict[float, float]
) -> float:
    """Largest r with frac(r) >= 1/2 on a decreasing curve, interpolated between grid radii."""

    def f(i: int) -> float:
        r = float(radii[i])
        if r not in cache:
            cache[r] = frac(r)
        return cache[r]

    lo, hi = 0, len(radii) - 1
    if f(lo) < 0.5:
        return 0.0
    if f(hi) >= 0.5:
        return float(radii[hi])
    while hi - lo > 1:  # invariant: f(lo) >= 1/2 > f(hi)
        mid = (lo + hi) // 2
        if f(mid) >= 0.5:
            lo = mid
        else:
            hi = mid
    f_lo, f_hi = f(lo), f(hi)
    t = (f_lo - 0.5) / (f_lo - f_hi) if f_lo > f_hi else 0.0
    return float(radii[lo] + t * (radii[hi] - radii[lo]))


def _grid(dt2: np.ndarray, step: float) -> np.ndarray:
    rmax = float(np.sqrt(dt2.max()))
    return np.arange(0.5, max(rmax, 0.5) + step, step)


def pore_size_distribution(
    mask: np.ndarray, radii: Sequence[float], dt2: np.ndarray | None = None
) -> np.ndarray:
    """CPSD: share of ``mask`` covered by its opening with balls of each radius in ``radii``."""
    mask = np.asarray(mask, dtype=bool)
    total = np.count_nonzero(mask)
    if dt2 is None:
        dt2 = squared_edt(mask, int(np.ceil(max(radii))) + 2)
    out = []
    for r in radii:
        seeds = dt2 > r * r
        out.append(np.count_nonzero(dilate_ball(seeds, r) & mask) / total if seeds.any() else 0.0)
    return np.asarray(out)


def intrusion_distribution(
    mask: np.ndarray, radii: Sequence[float], axis: int = 0, dt2: np.ndarray | None = None
) -> np.ndarray:
    """Simulated mercury intrusion from the plane at index 0 of ``axis``: intruded share."""
    mask = np.asarray(mask, dtype=bool)
    total = np.count_nonzero(mask)
    if dt2 is None:
        dt2 = squared_edt(mask, int(np.ceil(max(radii))) + 2)
    return np.asarray([_intruded(mask, dt2, r, axis) / total for r in radii])


def _intruded(mask: np.ndarray, dt2: np.ndarray, r: float, axis: int) -> int:
    return _intruded_all(mask, dt2, r, [axis])[axis]


def _intruded_all(
    mask: np.ndarray,
    dt2: np.ndarray,
    r: float,
    axes: Sequence[int],
    opened: Callable[[float], int] | None = None,
) -> dict[int, int]:
    """Intruded phase voxels at radius ``r`` from the inlet plane of each axis.

    Dilations are shared: axes whose inlets touch the same clusters reuse one dilation, and when
    every cluster touches the inlet the intrusion equals the opening (``opened(r)``, cached by the
    caller for the pore-size distribution).
    """
    seeds = dt2 > r * r
    lab, n = ndi.label(seeds)  # face connectivity: a ball slides through face-adjacent centres
    del seeds
    kept: dict[int, np.ndarray | None] = {}
    signature: dict[int, bytes] = {}
    full = set()
    for axis in axes:
        inlet_labels = np.unique(np.take(lab, 0, axis=axis))
        inlet_labels = inlet_labels[inlet_labels > 0]
        signature[axis] = inlet_labels.tobytes()
        if n == 0 or inlet_labels.size == 0:
            kept[axis] = None
        elif inlet_labels.size == n and opened is not None:
            full.add(axis)
        elif signature[axis] not in [signature[a] for a in kept if kept[a] is not None]:
            keep = np.zeros(n + 1, bool)
            keep[inlet_labels] = True
            kept[axis] = np.packbits(keep[lab])  # 1 bit per voxel while labels live (not np.take:
            # it would cast the int32 labels to a 128 MB int64 copy)
    shape = lab.shape
    del lab
    out: dict[int, int] = {}
    for axis in axes:
        if axis in full:
            out[axis] = opened(r)  # type: ignore[misc]
        elif axis in kept and kept[axis] is None:
            out[axis] = 0
        elif axis in kept:
            packed = kept[axis]
            centres = np.unpackbits(packed, count=int(np.prod(shape))).reshape(shape).view(bool)
            out[axis] = int(np.count_nonzero(dilate_ball(centres, r) & mask))
    for axis in axes:  # axes that share an inlet cluster set with an earlier one
        if axis not in out:
            twin = next(a for a in out if signature[a] == signature[axis])
            out[axis] = out[twin]
    return out


def constrictivity(
    indices: Any,
    phase: int,
    axis: int | str | Sequence[int | str] = "z",
    voxel_size: float | Sequence[float] | None = None,
    *,
    n_phases: int | None = None,
    radius_step: float = 0.5,
    unit: str | None = None,
) -> Constrictivity | list[Constrictivity]:
    """Constrictivity β = (r_min / r_max)² of a phase along one or several axes.

    Parameters
    ----------
    indices : ndarray or Tensor
        3D phase-index volume ``(z, y, x)``.
    phase : int
        Phase index.
    axis : int or str, or a sequence of them
        Direction(s) of intrusion (inlet at index 0). With a sequence the pore-size distribution
        is computed once and a list is returned.
    voxel_size : float, optional
        Isotropic voxel size for ``r_min``/``r_max`` in physical units (β is dimensionless).
    n_phases : int, optional
        Number of phases (for index validation).
    radius_step : float
        Grid step of the radius search in voxels (the median is interpolated between steps).
    unit : str, optional
        Name of the physical unit (reported only).

    Returns
    -------
    Constrictivity or list of Constrictivity
    """
    arr, k = as_index_array(indices, n_phases)
    if arr.ndim != 3:
        raise DescriptorError(
            f"constrictivity is a 3D descriptor; got a {arr.ndim}D image of shape {arr.shape}"
        )
    if not 0 <= int(phase) < k:
        raise DescriptorError(f"phase must be in 0..{k - 1}, got {phase}")
    if not radius_step > 0:
        raise DescriptorError(f"radius_step must be positive, got {radius_step}")
    h = isotropic_spacing(voxel_size, 3)
    single = isinstance(axis, (int, str, np.integer))
    axes = [axis_index(a, 3) for a in ([axis] if single else axis)]  # type: ignore[list-item]
    mask = arr == phase
    if not mask.any():
        raise DescriptorError(
            f"phase {phase} is absent from the volume; no constrictivity to measure — check the "
            "phase mapping"
        )
    total = np.count_nonzero(mask)
    dt2 = squared_edt(mask, MAX_CAP)
    radii = _grid(dt2, radius_step)

    opened_cache: dict[float, int] = {}

    def opened(r: float) -> int:
        """Phase voxels covered by the opening with the ball of radius r (cached)."""
        if r not in opened_cache:
            seeds = dt2 > r * r
            opened_cache[r] = (
                int(np.count_nonzero(dilate_ball(seeds, r) & mask)) if seeds.any() else 0
            )
        return opened_cache[r]

    def cpsd(r: float) -> float:
        return opened(r) / total

    r_max = _median_radius(cpsd, radii, {})
    scale = h or 1.0

    # One labelling of the eroded phase per radius serves every direction: cache per radius.
    mip_cache: dict[float, dict[int, float]] = {}

    def mip(r: float, ax: int) -> float:
        if r not in mip_cache:
            mip_cache[r] = _intruded_all(mask, dt2, r, axes, opened)
        return mip_cache[r][ax] / total

    results = []
    for ax in axes:
        sub = radii[radii <= r_max + radius_step]  # MIP <= CPSD: r_min <= r_max
        r_min = _median_radius(lambda r, ax=ax: mip(r, ax), sub, {})
        beta = (r_min / r_max) ** 2 if r_max > 0 else 0.0
        results.append(
            Constrictivity(
                beta=float(min(beta, 1.0)),
                r_min=r_min * scale,
                r_max=r_max * scale,
                percolates=r_min > 0,
                phase=int(phase),
                axis=ax,
                unit=(unit or "unit") if h is not None else "voxel",
            )
        )
    return results[0] if single else results
