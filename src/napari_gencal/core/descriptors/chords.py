"""Chord length distributions and mean chord lengths per phase and axis, free of window bias.

A chord of a phase along an axis is a maximal run of consecutive phase voxels on a line parallel to
that axis. Chords that touch the window border are censored: their true length is unknown.

* **Distribution** (minus sampling with Horvitz–Thompson weights, Ohser & Mücklich 2000, §4.4):
  on a line of ``n`` voxels a chord of ``ℓ`` voxels is completely observed (both of its end
  transitions inside the window) for ``n − ℓ − 1`` of its possible positions, so long chords are
  seen less often than short ones. Weighting each complete chord by ``1 / (n − ℓ − 1)`` removes
  this length bias; dropping border chords without the weights shortens the distribution.
* **Mean** (ratio estimator): ``ℓ̄ = V_V / N_L`` with ``V_V`` the phase fraction of the window and
  ``N_L`` the number of chord ends per unit line length halved (phase boundary crossings between
  neighbouring voxels along the axis / 2 / number of neighbour pairs). It uses every voxel and
  every crossing, including those of censored chords, and is unbiased for stationary structures.

Lengths are counted in voxels (a run of ``ℓ`` voxels has length ``ℓ``) and multiplied by the voxel
size along the axis when one is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._common import DescriptorError, as_index_array, axis_index

__all__ = ["ChordLengthDistribution", "chord_length_distribution", "mean_chord_length"]

_CHUNK = 1 << 22  # voxels per chunk of lines: bounds the temporary memory on large volumes


@dataclass
class ChordLengthDistribution:
    """Number-weighted chord length distribution of one phase along one axis.

    Attributes
    ----------
    length : ndarray
        Chord lengths (voxels × voxel size), ascending, one entry per observed integer length.
    probability : ndarray
        Horvitz–Thompson corrected probability of each length (sums to 1).
    cdf : ndarray
        Cumulative distribution at ``length``.
    mean : float
        Ratio estimate ``V_V / N_L`` of the mean chord length (same unit as ``length``).
    mean_ht : float
        Mean of the corrected distribution (agrees with ``mean`` up to the loss of chords longer
        than the window can hold).
    mean_naive : float
        Plain mean of the complete chords without weights (the common but length-biased estimate
        that drops border chords; kept for comparison with other tools).
    n_complete, n_censored : int
        Chords observed completely / touching the window border.
    phase, axis : int
        Phase index and axis of the lines.
    unit : str
        ``"voxel"`` or the physical unit.
    """

    length: np.ndarray
    probability: np.ndarray
    cdf: np.ndarray
    mean: float
    mean_ht: float
    mean_naive: float
    n_complete: int
    n_censored: int
    phase: int
    axis: int
    unit: str = "voxel"
    extra: dict[str, Any] = field(default_factory=dict)

    def cdf_at(self, x: np.ndarray | float) -> np.ndarray:
        """Right-continuous CDF evaluated at arbitrary lengths ``x``."""
        x = np.asarray(x, dtype=float)
        idx = np.searchsorted(self.length, x, side="right")
        padded = np.concatenate([[0.0], self.cdf])
        return padded[idx]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {
            "phase": self.phase,
            "axis": self.axis,
            "unit": self.unit,
            "mean": self.mean,
            "mean_ht": self.mean_ht,
            "mean_naive": self.mean_naive,
            "n_complete": self.n_complete,
            "n_censored": self.n_censored,
            "length": self.length.tolist(),
            "probability": self.probability.tolist(),
        }


def _lines(arr: np.ndarray, axis: int, sections: bool) -> tuple[np.ndarray, int]:
    """All lines parallel to ``axis`` as rows of a 2D array (a view when possible)."""
    spatial_axis = axis + 1 if sections else axis
    moved = np.moveaxis(arr, spatial_axis, -1)
    n = moved.shape[-1]
    return moved.reshape(-1, n), n


def _resolve(indices: Any, phase: int, axis: int | str, sections: bool, n_phases: int | None):
    arr, k = as_index_array(indices, n_phases)
    if sections:
        if arr.ndim != 3:
            raise DescriptorError(
                f"sections=True expects a stack of 2D sections (N, H, W), got shape {arr.shape}"
            )
        ax = axis_index(axis, 2)
    else:
        if arr.ndim not in (2, 3):
            raise DescriptorError(f"expected a 2D image or 3D volume, got shape {arr.shape}")
        ax = axis_index(axis, arr.ndim)
    phase = int(phase)
    if not 0 <= phase < k:
        raise DescriptorError(f"phase must be in 0..{k - 1}, got {phase}")
    return arr, ax, phase


def _spacing(voxel_size: float | Sequence[float] | None, axis: int, ndim: int) -> float | None:
    if voxel_size is None:
        return None
    if np.isscalar(voxel_size):
        return float(voxel_size)  # type: ignore[arg-type]
    vs = [float(v) for v in voxel_size]  # type: ignore[union-attr]
    if len(vs) == 1:
        return vs[0]
    if len(vs) != ndim:
        raise DescriptorError(f"voxel_size has {len(vs)} values for a {ndim}D image")
    return vs[axis]


def _ratio_mean(lines: np.ndarray, phase: int) -> tuple[float, int, int]:
    """Phase voxels, crossings and neighbour pairs along the rows of ``lines``."""
    n_phase = 0
    crossings = 0
    rows_per_chunk = max(1, _CHUNK // lines.shape[1])
    for r0 in range(0, lines.shape[0], rows_per_chunk):
        m = lines[r0 : r0 + rows_per_chunk] == phase
        n_phase += int(np.count_nonzero(m))
        crossings += int(np.count_nonzero(m[:, 1:] != m[:, :-1]))
    pairs = lines.shape[0] * (lines.shape[1] - 1)
    return n_phase, crossings, pairs


def mean_chord_length(
    indices: Any,
    phase: int,
    axis: int | str,
    voxel_size: float | Sequence[float] | None = None,
    *,
    sections: bool = False,
    n_phases: int | None = None,
) -> float:
    """Mean chord length of a phase along an axis, ``V_V / N_L`` (unbiased by the window).

    Parameters
    ----------
    indices : ndarray or Tensor
        Phase indices: 2D image, 3D volume, or stack of 2D sections ``(N, H, W)`` with
        ``sections=True`` (then ``axis`` is an in-plane axis: 0/"y" or 1/"x").
    phase : int
        Phase index.
    axis : int or {"z", "y", "x"}
        Direction of the chords.
    voxel_size : float or sequence of float, optional
        Voxel size (per axis allowed: only the spacing along ``axis`` is used).
    sections : bool
        Whether the first axis is a batch of sections.
    n_phases : int, optional
        Number of phases (for index validation).

    Returns
    -------
    float
        Mean chord length in voxels (or physical units); ``inf`` when the phase fills every line
        (no boundary crossing), ``nan`` when the phase is absent.
    """
    arr, ax, phase = _resolve(indices, phase, axis, sections, n_phases)
    lines, n = _lines(arr, ax, sections)
    if n < 2:
        raise DescriptorError(f"lines along axis {ax} have a single voxel; no chords to measure")
    n_phase, crossings, pairs = _ratio_mean(lines, phase)
    h = _spacing(voxel_size, ax, 2 if sections else arr.ndim) or 1.0
    if n_phase == 0:
        return float("nan")
    if crossings == 0:
        return float("inf")
    vv = n_phase / lines.size
    nl = crossings / 2.0 / pairs
    return float(vv / nl * h)


def chord_length_distribution(
    indices: Any,
    phase: int,
    axis: int | str,
    voxel_size: float | Sequence[float] | None = None,
    *,
    sections: bool = False,
    n_phases: int | None = None,
    unit: str | None = None,
) -> ChordLengthDistribution:
    """Chord length distribution of a phase along an axis (minus sampling + Horvitz–Thompson).

    Parameters
    ----------
    indices : ndarray or Tensor
        Phase indices: 2D image, 3D volume, or stack of 2D sections ``(N, H, W)`` with
        ``sections=True`` (then ``axis`` is an in-plane axis: 0/"y" or 1/"x").
    phase : int
        Phase index.
    axis : int or {"z", "y", "x"}
        Direction of the chords.
    voxel_size : float or sequence of float, optional
        Voxel size (per axis allowed).
    sections : bool
        Whether the first axis is a batch of sections (all their lines are pooled).
    n_phases : int, optional
        Number of phases (for index validation).
    unit : str, optional
        Name of the physical unit (reported only).

    Returns
    -------
    ChordLengthDistribution

    Raises
    ------
    DescriptorError
        If the phase is absent or has no chord that fits completely inside the window.
    """
    arr, ax, phase = _resolve(indices, phase, axis, sections, n_phases)
    lines, n = _lines(arr, ax, sections)
    if n < 3:
        raise DescriptorError(
            f"lines along axis {ax} have {n} voxels; a complete chord needs at least 3"
        )
    counts = np.zeros(n + 1, dtype=np.int64)
    n_censored = 0
    rows_per_chunk = max(1, _CHUNK // n)
    for r0 in range(0, lines.shape[0], rows_per_chunk):
        m = lines[r0 : r0 + rows_per_chunk] == phase
        padded = np.zeros((m.shape[0], n + 2), dtype=bool)
        padded[:, 1:-1] = m
        # transitions alternate start/end along each padded row (it begins and ends outside)
        _, cols = np.nonzero(padded[:, 1:] != padded[:, :-1])
        starts, ends = cols[0::2], cols[1::2]
        complete = (starts > 0) & (ends < n)
        lengths = ends - starts
        counts += np.bincount(lengths[complete], minlength=n + 1)
        n_censored += int(np.count_nonzero(~complete))
    n_complete = int(counts.sum())
    n_phase, crossings, pairs = _ratio_mean(lines, phase)
    if n_phase == 0:
        raise DescriptorError(
            f"phase {phase} is absent from the image; no chords to measure — check the phase "
            "mapping"
        )
    if n_complete == 0:
        raise DescriptorError(
            f"phase {phase} has no chord along axis {ax} that fits inside the window (all "
            f"{n_censored} touch the border); use a larger window"
        )
    ell = np.arange(n + 1)
    # Horvitz–Thompson: a chord of ℓ voxels fits completely at n − ℓ − 1 of the line's positions.
    avail = (n - ell - 1).astype(float)
    weights = np.zeros(n + 1)
    ok = (counts > 0) & (avail > 0)
    weights[ok] = counts[ok] / avail[ok]
    keep = np.nonzero(weights)[0]
    prob = weights[keep] / weights[keep].sum()
    h = _spacing(voxel_size, ax, 2 if sections else arr.ndim)
    scale = h or 1.0
    length = keep.astype(float) * scale
    mean = float("inf") if crossings == 0 else (n_phase / lines.size) / (crossings / 2.0 / pairs)
    return ChordLengthDistribution(
        length=length,
        probability=prob,
        cdf=np.cumsum(prob),
        mean=float(mean * scale),
        mean_ht=float(np.sum(length * prob)),
        mean_naive=float(np.sum(ell * counts) / n_complete * scale),
        n_complete=n_complete,
        n_censored=n_censored,
        phase=phase,
        axis=ax,
        unit=(unit or "unit") if h is not None else "voxel",
    )
