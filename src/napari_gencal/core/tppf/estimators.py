"""TPPF estimators on phase indicators: lattice, radial and directional curves, loss, r_max rule.

:func:`lattice_tppf` (``ĉ_ij(h)`` for every lag), :func:`radial_tppf` (Gaussian-kernel regression
over ``|h|``, with its cached regression plan), :func:`directional_tppf` (curves along each axis),
:func:`tppf_loss` (the calibration loss, Eq. 26/33) and :func:`choose_r_max` (the r_max rule of
method.md §4), plus the private helpers the front end in :mod:`.result` reuses to get all of them
from one lattice estimate. The FFT work is in :mod:`._fft`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._fft import (
    _as_batched,
    _check_lag,
    _fft_len,
    _irfft,
    _rfft,
    _take,
    _upper_lattice,
    pair_indices,
)

#: Bandwidths beyond r_max that the kernel regression reaches (Gaussian tail e^-4.5 ≈ 1 %).
KERNEL_REACH = 3.0


def lattice_tppf(indicators: Any, max_lag: int, *, dim: int | None = None) -> torch.Tensor:
    """Minus-sampling TPPF estimator ``ĉ_ij(h)`` for every lattice vector with ``|h_k| <= max_lag``.

    ``ĉ_ij(h) = Σ_{t ∈ W∩(W−h)} ξ_i(t) ξ_j(t+h) / |W∩(W−h)|`` (method.md §4), computed by FFT with
    zero padding to at least ``w + max_lag`` per axis (no wrap-around); the pair count
    ``∏_k (w_k − |h_k|)`` is analytic. One ``rfftn`` per phase; products only for pairs ``i <= j``
    (``ĉ_ji(h) = ĉ_ij(−h)``).

    Parameters
    ----------
    indicators : Tensor or ndarray
        Phase indicators ``(k, *spatial)`` or ``(B, k, *spatial)``, 2D or 3D, values in [0, 1]
        (one-hot or soft probabilities).
    max_lag : int
        Largest lag per axis; must be smaller than every image side.
    dim : {2, 3}, optional
        Number of spatial axes; only needed for a 4D input whose phases do not sum to one.

    Returns
    -------
    Tensor
        ``(B, k, k, *(2·max_lag+1,)*d)``; index ``max_lag`` on each spatial axis is ``h = 0``.
        Differentiable with respect to ``indicators``.
    """
    x = _as_batched(indicators, dim)
    L = _check_lag(max_lag, x.shape[2:])
    d = x.ndim - 2
    k = x.shape[1]
    up, ii, jj = _upper_lattice(x, L, mean_batch=False)
    flip_dims = tuple(range(1, 1 + d))
    pos = {(i, j): p for p, (i, j) in enumerate(zip(ii, jj, strict=True))}
    # The full k×k matrix: the lower triangle is the upper one at −h (a flip of the window).
    rows = []
    for i in range(k):
        row = [
            up[:, pos[(i, j)]] if i <= j else up[:, pos[(j, i)]].flip(flip_dims) for j in range(k)
        ]
        rows.append(torch.stack(row, 1))
    return torch.stack(rows, 1)


@functools.lru_cache(maxsize=64)
def _radial_plan(d: int, L: int, r_max: int, bandwidth: float, exact_origin: bool):
    """Regression weights, computed once per (dimension, window, r_max, bandwidth).

    Lags are grouped by ``s = |h|²`` (an integer): the regression only depends on ``|h|``, so
    ``Σ_h K(r − |h|) ĉ(h)`` becomes a small matrix times the per-shell sums of ``ĉ``.

    Returns ``(sel, shell, weights)``: flat window positions within the regression radius, the shell
    index of each, and the ``(r_max+1, n_shells)`` normalized weight matrix.
    """
    reach = r_max + KERNEL_REACH * bandwidth
    ax = np.arange(-L, L + 1)
    grids = np.meshgrid(*([ax] * d), indexing="ij")
    s = sum(g.astype(np.int64) ** 2 for g in grids).ravel()
    sel = np.flatnonzero(s <= reach**2 + 1e-9)
    s_sel = s[sel]
    shells, shell_of = np.unique(s_sel, return_inverse=True)
    n_per_shell = np.bincount(shell_of, minlength=shells.size).astype(np.float64)
    radius = np.sqrt(shells.astype(np.float64))
    r = np.arange(r_max + 1, dtype=np.float64)[:, None]
    K = np.exp(-0.5 * ((r - radius[None, :]) / bandwidth) ** 2)
    if exact_origin:
        # r = 0 from h = 0 alone, so that C_ii(0) = φ_i and C_ij(0) = 0 hold exactly (hard input).
        K[0] = 0.0
        K[0, 0] = 1.0
    W = K / (K * n_per_shell[None, :]).sum(1, keepdims=True)
    return sel, shell_of, W, shells.size


@functools.lru_cache(maxsize=64)
def _radial_plan_on(
    d: int, L: int, r_max: int, bandwidth: float, exact_origin: bool, device: torch.device, dtype
):
    sel, shell_of, W, n_shells = _radial_plan(d, L, r_max, bandwidth, exact_origin)
    return (
        torch.as_tensor(sel, device=device),
        torch.as_tensor(shell_of, device=device),
        torch.as_tensor(W, device=device, dtype=dtype),
        n_shells,
    )


def _radial_from_upper(
    up: torch.Tensor, L: int, r_max: int, bandwidth: float, exact_origin: bool
) -> torch.Tensor:
    """Kernel regression of upper-pair lattice estimates ``(P, *(2L+1,)*d)`` → ``(P, r_max+1)``."""
    P = up.shape[0]
    d = up.ndim - 1
    sel, shell_of, W, n_shells = _radial_plan_on(
        d, L, int(r_max), float(bandwidth), bool(exact_origin), up.device, up.dtype
    )
    flat = _take(up.reshape(P, -1), 1, sel)
    shell_sums = torch.zeros(P, n_shells, dtype=up.dtype, device=up.device).index_add(
        1, shell_of, flat
    )
    return shell_sums @ W.T


def _symmetric_from_upper(vals: torch.Tensor, k: int) -> torch.Tensor:
    """``(P, …)`` upper-pair values → symmetric ``(k, k, …)``."""
    ii, jj = pair_indices(k)
    off = [p for p, (i, j) in enumerate(zip(ii, jj, strict=True)) if i != j]
    # Mirror only the off-diagonal pairs: a duplicated diagonal index would double its gradient.
    rows = torch.as_tensor(ii + [jj[p] for p in off], device=vals.device)
    cols = torch.as_tensor(jj + [ii[p] for p in off], device=vals.device)
    src = torch.cat([vals, vals[off]], 0) if off else vals
    out = vals.new_zeros((k, k) + tuple(vals.shape[1:]))
    return out.index_put((rows, cols), src)


def _check_radial_args(r_max: int, bandwidth: float) -> tuple[int, float]:
    if isinstance(r_max, bool) or int(r_max) != r_max or r_max < 0:
        raise ValueError(f"r_max must be a non-negative integer (in pixels), got {r_max!r}")
    if not (bandwidth > 0 and math.isfinite(bandwidth)):
        raise ValueError(f"bandwidth must be a positive number of pixels, got {bandwidth!r}")
    return int(r_max), float(bandwidth)


def _max_lag_for(r_max: int, bandwidth: float, shape: Sequence[int]) -> int:
    """Window half-width for the regression: r_max + 3·bandwidth, cut to the image (side − 1)."""
    if r_max >= min(shape):
        raise ValueError(
            f"r_max={r_max} is not smaller than the image side {min(shape)} (image shape "
            f"{tuple(shape)}); choose r_max <= {min(shape) // 4} (a quarter of the side, the "
            "default rule) or use a larger image"
        )
    return min(r_max + math.ceil(KERNEL_REACH * bandwidth), min(shape) - 1)


def radial_tppf(
    indicators: Any,
    r_max: int,
    bandwidth: float = 1.0,
    *,
    exact_origin: bool = True,
    dim: int | None = None,
) -> torch.Tensor:
    """Radial TPPF curves ``C_ij(r)``, r = 0..r_max, batch-averaged (method.md §4, Eq. 23–25).

    Gaussian-kernel regression over all lattice vectors (all orthants) with
    ``|h| <= r_max + 3·bandwidth``: ``Ĉ_ij(r) = Σ_h K_b(r − |h|) ĉ_ij(h) / Σ_h K_b(r − |h|)``.
    The regression weights are cached per (shape, r_max, bandwidth), so calibration loops pay only
    for the FFTs. A batch of 2D sections of one size is one batched FFT; the batch mean is taken in
    Fourier space, so only one inverse FFT per phase pair is needed whatever the batch size.

    Parameters
    ----------
    indicators : Tensor or ndarray
        ``(k, *spatial)`` or ``(B, k, *spatial)``, 2D or 3D, values in [0, 1].
    r_max : int
        Largest distance in pixels; must be smaller than every image side.
    bandwidth : float
        Gaussian kernel standard deviation in pixels.
    exact_origin : bool
        If true (default), ``r = 0`` is the estimate at ``h = 0`` alone, so ``C_ii(0) = φ_i`` and
        ``C_ij(0) = 0`` hold exactly for hard input; if false, r = 0 is regressed like every r.
    dim : {2, 3}, optional
        Spatial dimension, for ambiguous 4D input (see :func:`lattice_tppf`).

    Returns
    -------
    Tensor
        ``(k, k, r_max+1)``, symmetric in (i, j). Differentiable with respect to ``indicators``.
    """
    r_max, bandwidth = _check_radial_args(r_max, bandwidth)
    x, sums_to_one = _as_batched(indicators, dim, with_sum=True)
    L = _max_lag_for(r_max, bandwidth, x.shape[2:])
    up, _, _ = _upper_lattice(x, L, mean_batch=True, sums_to_one=sums_to_one)
    curves = _radial_from_upper(up, L, r_max, bandwidth, exact_origin)
    return _symmetric_from_upper(curves, x.shape[1])


def directional_tppf(indicators: Any, r_max: int, *, dim: int | None = None) -> torch.Tensor:
    """TPPF curves along each axis: ``ĉ_ij(r·e_a)``, r = 0..r_max, for every spatial axis ``a``.

    Each lag is the average of ``+r·e_a`` and ``−r·e_a`` (both orientations of the axis), which
    makes the curves symmetric in (i, j). Computed with one 1D FFT per axis (zero padded, no
    wrap-around), batch-averaged.

    Parameters
    ----------
    indicators : Tensor or ndarray
        ``(k, *spatial)`` or ``(B, k, *spatial)``, values in [0, 1].
    r_max : int
        Largest lag; must be smaller than every image side.
    dim : {2, 3}, optional
        Spatial dimension, for ambiguous 4D input.

    Returns
    -------
    Tensor
        ``(d, k, k, r_max+1)``, axes in array order ((z,) y, x).
    """
    r_max, _ = _check_radial_args(r_max, 1.0)
    x = _as_batched(indicators, dim)
    shape = x.shape[2:]
    _check_lag(r_max, shape, "r_max")
    B, k = x.shape[:2]
    d = len(shape)
    ii, jj = pair_indices(k)
    out = []
    for a in range(d):
        n = _fft_len(shape[a] + r_max)
        Fp = _rfft(x, n, 2 + a).unbind(1)  # k × (B, ..., f, ...)
        # Σ over batch and every line along the axis of conj(F_i)·F_j, then one short inverse
        # per pair.
        other = [0] + [1 + b for b in range(d) if b != a]  # batch and the other axes
        G = torch.stack([(Fp[i].conj() * Fp[j]).sum(other) for i, j in zip(ii, jj, strict=True)])
        g = _irfft(G, n, -1)  # (P, n)
        pos = g[:, : r_max + 1]
        neg = torch.cat([g[:, :1], g[:, n - r_max :].flip(-1)], 1) if r_max > 0 else g[:, :1]
        count = (shape[a] - torch.arange(r_max + 1, device=x.device, dtype=g.dtype)) * (
            B * math.prod(shape) / shape[a]
        )
        out.append(_symmetric_from_upper(0.5 * (pos + neg) / count, k))
    return torch.stack(out, 0)


def _directional_from_upper(up: torch.Tensor, L: int, r_max: int, k: int) -> torch.Tensor:
    """Axis curves (±r averaged) read off an upper-pair lattice window ``(P, *(2L+1,)*d)``."""
    d = up.ndim - 1
    out = []
    for a in range(d):
        line = up
        for b in range(d - 1, -1, -1):  # keep axis a, take h_b = 0 on every other axis
            if b != a:
                line = line.select(1 + b, L)
        pos = line[:, L : L + r_max + 1]
        neg = line[:, L - r_max : L + 1].flip(-1)
        out.append(_symmetric_from_upper(0.5 * (pos + neg), k))
    return torch.stack(out, 0)


def tppf_loss(model_curves: torch.Tensor, data_curves: Any) -> torch.Tensor:
    """TPPF loss (Eq. 26/33): mean over pairs ``i <= j`` and ``r`` of the squared differences.

    Parameters
    ----------
    model_curves : Tensor
        ``(k, k, R)`` model curves (differentiable).
    data_curves : Tensor or ndarray
        ``(k, k, R)`` data curves (constant).

    Returns
    -------
    Tensor
        Scalar.
    """
    m = model_curves
    t = torch.as_tensor(data_curves, dtype=m.dtype, device=m.device)
    if m.ndim != 3 or m.shape[0] != m.shape[1] or m.shape != t.shape:
        raise ValueError(
            f"tppf_loss needs model and data curves of the same shape (k, k, R); got "
            f"{tuple(m.shape)} and {tuple(t.shape)} — compute both with the same r_max and phases"
        )
    ii, jj = pair_indices(m.shape[0])
    diff = (m - t)[ii, jj]
    return (diff * diff).mean()


def _settled_scale(fractions: np.ndarray, scale: str) -> np.ndarray:
    """Per-pair scale that "within tol" is measured against (see :func:`choose_r_max`)."""
    phi = np.asarray(fractions, dtype=np.float64)
    if scale == "correlation":
        sd = np.sqrt(np.clip(phi * (1 - phi), 0, None))
        return np.outer(sd, sd)
    if scale == "relative":
        return np.outer(phi, phi)
    if scale == "absolute":
        return np.ones((phi.size, phi.size))
    raise ValueError(f"scale must be 'correlation', 'relative' or 'absolute', got {scale!r}")


def choose_r_max(
    curves_or_indicators: Any,
    fractions: Sequence[float] | np.ndarray | None = None,
    tol: float = 0.01,
    factor: float = 1.5,
    cap: int = 100,
    image_shape: Sequence[int] | None = None,
    *,
    scale: str = "absolute",
    bandwidth: float = 1.0,
) -> int:
    """The r_max rule of method.md §4.

    ``r0`` is the smallest r from which on every curve stays within ``tol`` of ``φ_i·φ_j``; the
    result is ``ceil(factor · r0)``, capped at ``cap`` and at a quarter of the smallest image side.

    "Within ``tol``" is, by default, absolute: ``|C_ij(r) − φ_iφ_j| <= tol`` in probability units,
    the units of the TPPF loss (what the rule cuts off then adds at most ``tol²`` per point to the
    squared error). ``scale="correlation"`` measures it against
    ``sqrt(φ_i(1−φ_i) φ_j(1−φ_j))`` (the indicator correlation coefficient falls below ``tol``),
    ``scale="relative"`` against ``φ_iφ_j`` (strict for rare phases; noisy curves then rarely
    settle and the cap is returned). See docs/decisions/tppf.md.

    Parameters
    ----------
    curves_or_indicators : ndarray or Tensor
        Radial curves ``(k, k, R)`` (with ``fractions`` and ``image_shape``), or indicators
        ``(k, *spatial)`` / ``(B, k, *spatial)`` from which curves up to the cap are computed.
    fractions : sequence of float, optional
        Volume fractions φ_i; computed from indicators when they are given.
    tol : float
        Tolerance (default 1 %).
    factor : float
        Safety factor applied to ``r0`` (default 1.5).
    cap : int
        Absolute cap (default 100 pixels).
    image_shape : sequence of int, optional
        Spatial shape of the images, for the quarter-side cap (required with curves).
    scale : {"absolute", "correlation", "relative"}
        What ``tol`` is relative to: nothing (probability units, default), the indicator standard
        deviations, or ``φ_iφ_j``.
    bandwidth : float
        Kernel bandwidth used when curves are computed from indicators.

    Returns
    -------
    int
        r_max >= 1. When the curves never settle within the available range the cap is returned.
    """
    if not (tol > 0 and factor >= 1 and cap >= 1):
        raise ValueError(f"need tol > 0, factor >= 1 and cap >= 1; got {tol}, {factor}, {cap}")
    arr = curves_or_indicators
    is_curves = arr.ndim == 3 and arr.shape[0] == arr.shape[1]
    if is_curves and image_shape is None:
        raise ValueError(
            "choose_r_max got curves (k, k, R) but no image_shape; pass image_shape=<the spatial "
            "shape of the images> so that the quarter-side cap can be applied"
        )
    if is_curves:
        curves = np.asarray(
            arr.detach().cpu() if isinstance(arr, torch.Tensor) else arr, np.float64
        )
        if fractions is None:
            fractions = np.diag(curves[:, :, 0])
        shape = tuple(int(s) for s in image_shape)
    else:
        x = _as_batched(arr, None)
        shape = tuple(x.shape[2:])
        if fractions is None:
            fractions = x.mean(dim=tuple(i for i in range(x.ndim) if i != 1)).detach().cpu().numpy()
        limit = max(1, min(int(cap), min(shape) // 4))
        with torch.no_grad():
            curves = radial_tppf(x, limit, bandwidth).cpu().numpy().astype(np.float64)
    limit = max(1, min(int(cap), min(shape) // 4))
    phi = np.asarray(fractions, dtype=np.float64)
    if phi.shape != (curves.shape[0],):
        raise ValueError(f"{phi.size} fractions given for {curves.shape[0]} phases")
    dev = np.abs(curves - np.outer(phi, phi)[:, :, None]) / _settled_scale(phi, scale)[:, :, None]
    bad = (dev > tol).any(axis=(0, 1))  # (R,) r at which some curve is outside the band
    idx = np.flatnonzero(bad)
    r0 = int(idx[-1]) + 1 if idx.size else 0
    if r0 >= curves.shape[2]:
        return limit
    return int(max(1, min(limit, math.ceil(factor * r0))))
