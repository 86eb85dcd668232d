"""Input checks and small helpers shared by the descriptor modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

AXIS_NAMES_3D = ("z", "y", "x")
AXIS_NAMES_2D = ("y", "x")


class DescriptorError(ValueError):
    """Bad input to a descriptor; the message names the problem and the fix."""


def as_index_array(indices: Any, n_phases: int | None = None) -> tuple[np.ndarray, int]:
    """Phase indices as a numpy integer array, and the number of phases.

    Accepts numpy arrays and torch tensors (moved to the CPU); refuses floats that are not integral
    and indices outside ``0 .. n_phases-1``.
    """
    if hasattr(indices, "detach") and hasattr(
        indices, "cpu"
    ):  # a torch tensor, without importing torch
        indices = indices.detach().cpu().numpy()
    arr = np.asarray(indices)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise DescriptorError(
                "descriptors need phase indices 0..k-1 (integers), got non-integer values; "
                "threshold soft phase maps first (e.g. argmax over the phase axis)"
            )
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise DescriptorError(f"phase indices must be integers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise DescriptorError("the image is empty (size 0)")
    lo, hi = int(arr.min()), int(arr.max())
    if n_phases is None:
        n_phases = hi + 1
    n_phases = int(n_phases)
    if n_phases < 1:
        raise DescriptorError(f"n_phases must be >= 1, got {n_phases}")
    if lo < 0 or hi >= n_phases:
        raise DescriptorError(
            f"phase indices must lie in 0..{n_phases - 1}, found values in {lo}..{hi}; map the "
            "label values to phase indices first (napari_gencal.core.phases.to_indices)"
        )
    return arr, n_phases


def spatial_view(arr: np.ndarray, sections: bool) -> tuple[np.ndarray, int]:
    """Return ``(batch, dim)``: a batch of 2D sections ``(N, H, W)`` with dim 2, or a 3D volume
    ``(1, Z, Y, X)`` with dim 3. A single 2D image becomes a batch of one."""
    if sections:
        if arr.ndim != 3:
            raise DescriptorError(
                f"sections=True expects a stack of 2D sections (N, H, W), got shape {arr.shape}"
            )
        return arr, 2
    if arr.ndim == 2:
        return arr[None], 2
    if arr.ndim == 3:
        return arr[None], 3
    raise DescriptorError(
        f"expected a 2D image (y, x), a 3D volume (z, y, x) or sections (N, H, W) with "
        f"sections=True; got shape {arr.shape}"
    )


def isotropic_spacing(voxel_size: float | Sequence[float] | None, ndim: int) -> float | None:
    """One spacing for an isotropic grid; refuses anisotropic voxel sizes.

    Surface, tortuosity and constrictivity estimators here assume cubic voxels.
    """
    if voxel_size is None:
        return None
    if np.isscalar(voxel_size):
        vs = float(voxel_size)  # type: ignore[arg-type]
        if not vs > 0:
            raise DescriptorError(f"voxel_size must be positive, got {voxel_size}")
        return vs
    vals = [float(v) for v in voxel_size]  # type: ignore[union-attr]
    if len(vals) != ndim and len(vals) != 1:
        raise DescriptorError(f"voxel_size has {len(vals)} values for a {ndim}D image")
    if any(not v > 0 for v in vals):
        raise DescriptorError(f"voxel_size must be positive, got {vals}")
    if max(vals) > min(vals) * (1 + 1e-6):
        raise DescriptorError(
            f"anisotropic voxel size {tuple(vals)} is not supported by this descriptor; resample "
            "the image to cubic voxels first (e.g. scipy.ndimage.zoom(labels, factors, order=0))"
        )
    return vals[0]


def axis_index(axis: int | str, ndim: int) -> int:
    """Axis number from ``0..ndim-1`` or a name (``"z", "y", "x"``; 2D: ``"y", "x"``)."""
    names = AXIS_NAMES_3D if ndim == 3 else AXIS_NAMES_2D
    if isinstance(axis, str):
        if axis not in names:
            raise DescriptorError(f"axis must be one of {names} for a {ndim}D image, got {axis!r}")
        return names.index(axis)
    ax = int(axis)
    if not 0 <= ax < ndim:
        raise DescriptorError(f"axis must be in 0..{ndim - 1} for a {ndim}D image, got {axis}")
    return ax


def shifted_pair(shape: Sequence[int], offset: Sequence[int]) -> tuple[tuple, tuple]:
    """Index tuples ``(a, b)`` so that ``x[a]`` and ``x[b]`` are all pairs ``(t, t + offset)`` with
    both points inside the window (minus sampling; no wrap-around)."""
    sa, sb = [], []
    for n, d in zip(shape, offset, strict=True):
        sa.append(slice(max(0, -d), n - max(0, d)))
        sb.append(slice(max(0, d), n + min(0, d)))
    return tuple(sa), tuple(sb)
