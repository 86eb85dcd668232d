"""Mean geodesic tortuosity of a phase in a direction (method.md §6).

For each phase voxel on the inlet plane (index 0 along the axis) that is connected through the
phase to the outlet plane (last index), the length of the shortest path inside the phase to the
outlet plane is divided by the thickness (number of voxels along the axis − 1); the descriptor is
the mean over those voxels. Paths use the 26-neighbourhood with step lengths 1, √2, √3.

Shortest paths are computed exactly by a vectorised Dijkstra variant (delta-stepping with bucket
width 1 = the smallest step; Meyer & Sanders 2003): nodes of one distance bucket cannot improve each
other, so every voxel is settled once. It gives the same distances as scikit-image's
``MCP_Geometric`` (tested) and is several times faster on 256³ volumes. Voxels that cannot reach
the outlet (dead ends, isolated clusters) never receive a distance, so dead-end pores do not enter
the mean (the pitfall of TauFactor #76); a phase in which no inlet voxel reaches the outlet is
reported as not percolating, with ``mean = nan``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._common import DescriptorError, as_index_array, axis_index

__all__ = ["GeodesicTortuosity", "geodesic_tortuosity", "geodesic_distance_to_outlet"]


@dataclass
class GeodesicTortuosity:
    """Mean geodesic tortuosity of one phase along one axis.

    Attributes
    ----------
    mean : float
        Mean of shortest-path length / thickness over the connected inlet voxels; ``nan`` when
        the phase does not percolate.
    std : float
        Standard deviation over those voxels (``nan`` when not percolating).
    percolates : bool
        Whether at least one inlet voxel is connected to the outlet plane through the phase.
    connected_fraction : float
        Share of the phase's inlet voxels that reach the outlet (dead ends excluded from ``mean``).
    n_inlet : int
        Number of phase voxels on the inlet plane.
    phase, axis : int
    """

    mean: float
    std: float
    percolates: bool
    connected_fraction: float
    n_inlet: int
    phase: int
    axis: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (``nan`` becomes ``None``)."""
        d = asdict(self)
        for key in ("mean", "std"):
            if not np.isfinite(d[key]):
                d[key] = None
        return d


def _offsets(shape: tuple[int, int, int]) -> list[tuple[np.int64, np.float32]]:
    s0, s1 = shape[1] * shape[2], shape[2]
    out = []
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            for c in (-1, 0, 1):
                if (a, b, c) != (0, 0, 0):
                    out.append(
                        (np.int64(a * s0 + b * s1 + c), np.float32(np.sqrt(a * a + b * b + c * c)))
                    )
    return out


def geodesic_distance_to_outlet(mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Shortest-path distance inside ``mask`` from every voxel to the outlet plane.

    Parameters
    ----------
    mask : ndarray of bool, 3D
        The phase.
    axis : int
        Axis of the direction; the outlet plane is the last index along it.

    Returns
    -------
    ndarray of float32
        Distance in voxels (26-neighbourhood, steps 1, √2, √3); ``inf`` outside the phase and
        where the outlet cannot be reached.
    """
    m = np.moveaxis(np.asarray(mask, dtype=bool), axis, 0)
    if m.ndim != 3:
        raise DescriptorError(f"geodesic distances need a 3D volume, got shape {mask.shape}")
    shape = tuple(s + 2 for s in m.shape)  # one voxel of padding stops paths at the window
    # -1 outside the phase (and in the padding): no candidate is ever "better" there, so no
    # separate mask is needed; settled voxels are protected the same way (their distance is
    # smaller than any candidate of a later bucket).
    dist = np.full(shape, -1.0, np.float32)
    dist[1:-1, 1:-1, 1:-1][m] = np.inf
    dist = dist.ravel()
    index_dtype = np.int32 if dist.size < 2**31 - 1 else np.int64
    offsets = [(index_dtype(o), w) for o, w in _offsets(shape)]
    n0 = m.shape[0]
    plane = np.zeros(shape[1:], bool)
    plane[1:-1, 1:-1] = m[-1]
    outlet = (np.flatnonzero(plane) + n0 * shape[1] * shape[2]).astype(index_dtype)
    dist[outlet] = 0.0
    pending = outlet  # voxels whose distance dropped and that are not settled yet
    k = 0
    # np.take / np.compress / np.put instead of fancy and boolean indexing: several times faster
    # on these 1D gathers (numpy's fast paths), same results.
    while pending.size:
        fl = np.floor(np.take(dist, pending))
        act = np.compress(fl == k, pending)
        pending = np.compress(fl > k, pending)
        if act.size:
            # de-duplicate by sorting (no volume-sized scratch array)
            act.sort()
            if act.size > 1:
                act = np.compress(np.concatenate(([True], act[1:] != act[:-1])), act)
            # Every step is >= 1, so nothing still to come can shorten a path of this bucket.
            da = np.take(dist, act)
            updated = [pending]
            for off, w in offsets:
                nb = act + off  # unique within one offset: plain assignment is safe
                cand = da + w
                better = cand < np.take(dist, nb)
                nb = np.compress(better, nb)
                np.put(dist, nb, np.compress(better, cand))
                updated.append(nb)
            pending = np.concatenate(updated)
        k += 1
    dist[dist < 0] = np.inf
    out = dist.reshape(shape)[1:-1, 1:-1, 1:-1]
    return np.moveaxis(out, 0, axis)


def geodesic_tortuosity(
    indices: Any, phase: int, axis: int | str = "z", *, n_phases: int | None = None
) -> GeodesicTortuosity:
    """Mean geodesic tortuosity of a phase from the inlet plane to the outlet plane.

    Parameters
    ----------
    indices : ndarray or Tensor
        3D phase-index volume ``(z, y, x)``.
    phase : int
        Phase index.
    axis : int or {"z", "y", "x"}
        Transport direction; inlet at index 0, outlet at the last index.
    n_phases : int, optional
        Number of phases (for index validation).

    Returns
    -------
    GeodesicTortuosity
    """
    arr, k = as_index_array(indices, n_phases)
    if arr.ndim != 3:
        raise DescriptorError(
            f"geodesic tortuosity is a 3D descriptor; got a {arr.ndim}D image of shape "
            f"{arr.shape}. Measure it on a 3D volume (e.g. a generated realization)"
        )
    ax = axis_index(axis, 3)
    if not 0 <= int(phase) < k:
        raise DescriptorError(f"phase must be in 0..{k - 1}, got {phase}")
    if arr.shape[ax] < 2:
        raise DescriptorError(f"the volume has a single voxel along axis {ax}; no thickness")
    mask = arr == phase
    inlet = np.take(mask, 0, axis=ax)
    n_inlet = int(np.count_nonzero(inlet))
    if not mask.any():
        raise DescriptorError(
            f"phase {phase} is absent from the volume; no tortuosity to measure — check the "
            "phase mapping"
        )
    dist = geodesic_distance_to_outlet(mask, ax)
    d_in = np.take(dist, 0, axis=ax)[inlet]
    reach = np.isfinite(d_in)
    if not reach.any():
        return GeodesicTortuosity(float("nan"), float("nan"), False, 0.0, n_inlet, int(phase), ax)
    tau = d_in[reach].astype(np.float64) / (arr.shape[ax] - 1)
    return GeodesicTortuosity(
        float(tau.mean()),
        float(tau.std()),
        True,
        float(reach.mean()),
        n_inlet,
        int(phase),
        ax,
    )
