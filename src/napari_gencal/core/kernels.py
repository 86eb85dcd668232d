"""High-parametric radial kernels ``k_θ(s) = θ[|s'|]`` at scaled coordinates (method.md §1).

The kernel of a field is evaluated at ``s'_i = s_i / scale_i`` — exact stretches (the anisotropy
b, a stretch within the sections, a length scale), no resampling. The shell indices and weights
depend on the geometry only and are cached per (m, scale) for kernels of calibration size; the
linear kernel's backward is a weighted histogram over its m + 2 shells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["radial_kernel", "kernel_radius"]


def _as_scale(scale: Sequence[float] | float | None, dim: int) -> tuple[float, ...]:
    if scale is None:
        return (1.0,) * dim
    if np.isscalar(scale):
        return (float(scale),) * dim  # type: ignore[arg-type]
    sc = tuple(float(s) for s in scale)  # type: ignore[union-attr]
    if len(sc) != dim:
        raise ValueError(f"scale has {len(sc)} entries for a {dim}D kernel; give one per axis")
    return sc


def kernel_radius(m: int, scale: Sequence[float] | float | None = None, dim: int = 3) -> tuple:
    """Support radius per axis of a radial kernel of radius ``m`` evaluated at ``s / scale``.

    Returns
    -------
    tuple of int
        ``ceil(m · scale_i)`` per axis (``m`` for unit scale).
    """
    # A tiny tolerance keeps m·b = 20.000000001 (float noise) from growing the support by one.
    return tuple(int(math.ceil(m * s - 1e-9)) for s in _as_scale(scale, dim))


class _ShellGather(torch.autograd.Function):
    """``θ[lo]·w_lo + θ[lo+1]·w_hi`` with a backward by ``bincount`` (a weighted histogram over
    the m + 2 shells) instead of an indexed scatter-add over every voxel: on a stretched 3D
    kernel (400 k voxels) the scatter was most of a calibration step."""

    @staticmethod
    def forward(ctx, th: torch.Tensor, lo: torch.Tensor, w_lo: torch.Tensor, w_hi: torch.Tensor):
        ctx.save_for_backward(lo, w_lo, w_hi)
        ctx.n = th.numel()
        return th[lo] * w_lo + th[lo + 1] * w_hi

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        lo, w_lo, w_hi = ctx.saved_tensors
        flat = lo.reshape(-1)
        g = grad.reshape(-1)
        n = ctx.n
        d = torch.bincount(flat, weights=g * w_lo.reshape(-1), minlength=n)
        d[1:] += torch.bincount(flat, weights=g * w_hi.reshape(-1), minlength=n)[: n - 1]
        return d.to(grad.dtype), None, None, None


_RADIAL_CACHE: dict[tuple, tuple[torch.Tensor, ...]] = {}
_RADIAL_CACHE_VOXELS = 1_000_000


def _radial_geometry(
    m: int, sc: tuple[float, ...], dim: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Indices and weights of :func:`radial_kernel` for one (m, scale): they depend on the
    geometry only, so a calibration step (three to five kernels, the same scale) computes them
    once. Returns ``(lo, w_lo, w_hi, near, inside)``: linear — ``k = θ[lo]·w_lo + θ[lo+1]·w_hi``;
    nearest — ``k = θ[near]·inside``."""
    key = (m, sc, dim, dtype, str(device))
    hit = _RADIAL_CACHE.get(key)
    if hit is not None:
        return hit
    radii = kernel_radius(m, sc, dim)
    axes = [
        torch.arange(-r, r + 1, dtype=torch.float64, device=device) / s
        for r, s in zip(radii, sc, strict=True)
    ]
    grids = torch.meshgrid(*axes, indexing="ij")
    dist = torch.sqrt(sum(g * g for g in grids))
    # Nearest integer with ties rounded up (floor(d + 1/2)): deterministic, unlike round-half-even.
    idx = torch.floor(dist + 0.5).to(torch.long)
    inside = (idx <= m).to(dtype)
    near = idx.clamp(max=m)
    lo = torch.floor(dist).to(torch.long).clamp(max=m)
    frac = (dist - lo.to(dist.dtype)).clamp(0.0, 1.0).to(dtype)
    out = (lo, (1 - frac) * inside, frac * inside, near, inside)
    # Kept for kernels of calibration size only (≤ 1 M voxels, 40 MB each, four at a time): a
    # huge stretched kernel of a generation is built once and must not stay in memory.
    if dist.numel() <= _RADIAL_CACHE_VOXELS:
        if len(_RADIAL_CACHE) >= 4:
            _RADIAL_CACHE.clear()
        _RADIAL_CACHE[key] = out
    return out


def radial_kernel(
    theta: torch.Tensor | np.ndarray | Sequence[float],
    dim: int = 3,
    scale: Sequence[float] | float | None = None,
    interpolation: str = "nearest",
) -> torch.Tensor:
    """High-parametric radial kernel, normalized to unit sum of squares (method.md §1).

    ``k(s) = θ[round(|s'|)]`` for ``round(|s'|) ≤ m`` (else 0), with ``s'_i = s_i / scale_i``, then
    ``k / sqrt(Σ k²)``. ``scale=(b, 1, 1)`` stretches the kernel by ``b`` along z (axis 0): the
    field is then the isotropic one evaluated at ``(z / b, y, x)`` — exact, no resampling; the
    support grows to ``ceil(m · b)`` along z.

    Parameters
    ----------
    theta : Tensor or array, shape (m + 1,)
        Kernel values at distances ``0 .. m``. Gradients flow through a tensor ``theta``.
    dim : int
        Spatial dimension (2 or 3).
    scale : float or sequence of float, optional
        Stretch factor per axis (default 1).
    interpolation : {"nearest", "linear"}
        ``"nearest"`` (method.md): ``θ[round(|s'|)]``, piecewise constant in shells. ``"linear"``:
        linear interpolation between ``θ_j`` at ``|s'| = j`` (``θ_{m+1} = 0``), still cut at
        ``round(|s'|) ≤ m``; continuous, so a stretch ``b`` scales chord lengths by ``b``.

    Returns
    -------
    Tensor, shape ``(2 r_0 + 1, …, 2 r_{d-1} + 1)`` with ``r_i = ceil(m · scale_i)``
        Same dtype/device as ``theta`` (float64 for array input).

    Raises
    ------
    ValueError
        Empty or non-finite ``theta``, an all-zero kernel, a non-positive scale.
    """
    th = torch.as_tensor(theta, dtype=None if isinstance(theta, torch.Tensor) else torch.float64)
    if th.ndim != 1 or th.numel() < 1:
        raise ValueError(
            f"theta must be a 1D array of length m + 1 ≥ 1, got shape {tuple(th.shape)}"
        )
    if not torch.isfinite(th.detach()).all():
        raise ValueError("theta contains NaN or infinite values; give finite kernel values")
    sc = _as_scale(scale, dim)
    if any(not (s > 0 and math.isfinite(s)) for s in sc):
        raise ValueError(f"kernel scale must be positive and finite, got {sc}")
    m = th.numel() - 1
    if interpolation not in ("nearest", "linear"):
        raise ValueError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
    lo, w_lo, w_hi, near, inside = _radial_geometry(m, sc, dim, th.dtype, th.device)
    if interpolation == "nearest":
        k = th[near] * inside
    else:
        # Piecewise linear in |s| between θ_j and θ_{j+1}: a continuous kernel, whose field has no
        # voxel-scale roughness from the jumps between shells (see docs/decisions/model.md).
        th_hi = torch.cat([th, th.new_zeros(1)])  # θ_{m+1} = 0: the kernel fades out at m + 1
        k = _ShellGather.apply(th_hi, lo, w_lo, w_hi)
    norm2 = (k * k).sum()
    if float(norm2.detach()) <= 0.0:
        raise ValueError(
            "the kernel is identically zero; give theta with at least one non-zero value"
        )
    return k / torch.sqrt(norm2)
