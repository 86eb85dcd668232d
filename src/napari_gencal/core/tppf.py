"""Two-point coverage probability functions (TPPFs) of phase indicators, method.md §4.

``C_ij(r)`` is the probability that a point lies in phase ``i`` and a point at distance ``r``
from it in phase ``j``. This module estimates it from hard (one-hot) or soft (probability) phase
indicators, in 2D and 3D, batched and differentiable (torch autograd through ``torch.fft``):

* :func:`lattice_tppf` — minus-sampling estimator ``ĉ_ij(h)`` for every lattice vector ``h`` with
  ``|h_k| <= max_lag`` (all orthants), by zero-padded FFT (no wrap-around) and analytic pair counts;
* :func:`radial_tppf` — Gaussian-kernel regression of ``ĉ_ij(h)`` over ``|h|`` to a radial curve;
* :func:`directional_tppf` — curves along each axis;
* :func:`choose_r_max` — the r_max rule; :func:`tppf_loss` — the calibration loss (Eq. 26/33);
* :class:`TPPFResult` and :func:`tppf_of_labels` — for the front ends (CSV, figure).

Decisions (what the method leaves open) are documented in ``docs/decisions/tppf.md``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "lattice_tppf",
    "radial_tppf",
    "directional_tppf",
    "choose_r_max",
    "tppf_loss",
    "pair_indices",
]

#: Bandwidths beyond r_max that the kernel regression reaches (Gaussian tail e^-4.5 ≈ 1 %).
KERNEL_REACH = 3.0
#: Default memory budget (bytes) for the complex spectra held at once; larger inputs are chunked.
_CHUNK_BYTES = 256 * 2**20


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------


def pair_indices(k: int) -> tuple[list[int], list[int]]:
    """Row and column indices of the pairs ``i <= j`` of ``k`` phases, row-major.

    The order is (0,0), (0,1), …, (0,k-1), (1,1), …, which is the order of the CSV columns and of
    :func:`tppf_loss`.
    """
    ii, jj = [], []
    for i in range(k):
        for j in range(i, k):
            ii.append(i)
            jj.append(j)
    return ii, jj


def _as_batched(indicators: Any, dim: int | None, check: bool = True) -> torch.Tensor:
    """Return ``(B, k, *spatial)`` floating indicators; infer the spatial dimension when needed.

    A 4D input is ambiguous: ``(B, k, H, W)`` (a batch of 2D images) or ``(k, Z, Y, X)`` (one
    volume). Without ``dim`` it is resolved by which axis the indicators sum to one over (a batch of
    2D images wins a tie); when neither does, the caller must say.
    """
    x = (
        indicators
        if isinstance(indicators, torch.Tensor)
        else torch.as_tensor(np.asarray(indicators))
    )
    if not (x.is_floating_point()):
        x = x.to(torch.float32)
    if dim is not None and dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3 (spatial dimensions), got {dim!r}")
    nd = x.ndim
    if dim is None:
        if nd == 3:
            dim = 2
        elif nd == 5:
            dim = 3
        elif nd == 4:
            with torch.no_grad():
                s1 = torch.allclose(
                    x.sum(1), torch.ones((), dtype=x.dtype, device=x.device), atol=1e-4
                )
                s0 = (not s1) and torch.allclose(
                    x.sum(0), torch.ones((), dtype=x.dtype, device=x.device), atol=1e-4
                )
            if s1:
                dim = 2
            elif s0:
                dim = 3
            else:
                raise ValueError(
                    f"cannot tell whether indicators of shape {tuple(x.shape)} are a batch of 2D "
                    "images (B, k, H, W) or one 3D volume (k, Z, Y, X): the phases do not sum to "
                    "one over either axis; pass dim=2 or dim=3"
                )
        else:
            raise ValueError(
                f"indicators must have shape (k, *spatial) or (B, k, *spatial) with 2 or 3 spatial "
                f"axes, got shape {tuple(x.shape)}"
            )
    if nd == dim + 1:
        x = x.unsqueeze(0)
    elif nd != dim + 2:
        raise ValueError(
            f"indicators of shape {tuple(x.shape)} do not match dim={dim}: expected "
            f"(k, *spatial) or (B, k, *spatial) with {dim} spatial axes"
        )
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"indicators of shape {tuple(x.shape)} hold no batch item or no phase")
    if min(x.shape[2:]) < 2:
        raise ValueError(
            f"image of shape {tuple(x.shape[2:])} is too small for two-point statistics: every "
            "side needs at least 2 pixels (rather tens); use a larger image"
        )
    if check:
        with torch.no_grad():
            if not bool(torch.isfinite(x).all()):
                raise ValueError(
                    "indicators contain NaN or infinite values; soft phase probabilities must be "
                    "finite numbers in [0, 1] — check the model output or mask the invalid voxels"
                )
            lo, hi = float(x.min()), float(x.max())
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise ValueError(
                f"indicators must lie in [0, 1] (one-hot phases or phase probabilities), got "
                f"values in [{lo:.4g}, {hi:.4g}]; pass one_hot(indices) or probabilities, not "
                "label values"
            )
    return x


def _fft_len(n: int) -> int:
    """Smallest FFT-friendly length >= n (5-smooth, what pocketfft/cuFFT are fastest on)."""
    import scipy.fft

    return int(scipy.fft.next_fast_len(int(n), real=True))


def _lag_index(L: int, n: int, device: torch.device) -> torch.Tensor:
    """Positions of lags -L..L in a circular result of length n (negative lags wrap to the end)."""
    return torch.arange(-L, L + 1, device=device) % n


def _pair_counts(
    shape: Sequence[int], L: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """|W ∩ (W − h)| = ∏_k (w_k − |h_k|) for |h_k| <= L, a (2L+1,)*d tensor (analytic, no FFT)."""
    h = torch.arange(-L, L + 1, device=device, dtype=dtype).abs()
    count = None
    for w in shape:
        c = w - h
        count = c if count is None else count[..., None] * c
    return count


def _check_lag(max_lag: int, shape: Sequence[int], what: str = "max_lag") -> int:
    max_lag = int(max_lag)
    if max_lag < 0:
        raise ValueError(f"{what} must be >= 0, got {max_lag}")
    if max_lag >= min(shape):
        raise ValueError(
            f"{what}={max_lag} is not smaller than the image side {min(shape)} (image shape "
            f"{tuple(shape)}): no pair of pixels is that far apart; use {what} <= {min(shape) - 1} "
            "(rather a quarter of the side) or a larger image"
        )
    return max_lag


def _cross_spectra(
    x: torch.Tensor, ii: list[int], jj: list[int], ns: Sequence[int], mean_batch: bool
) -> torch.Tensor:
    """conj(F_i)·F_j for the pairs (ii, jj); one rfftn per phase, batch-averaged on request.

    Returns ``(P, *spectrum)`` when ``mean_batch`` else ``(B, P, *spectrum)``. The batch is
    processed in chunks so that a stack of many sections does not hold all its spectra at once.
    """
    d = x.ndim - 2
    dims = tuple(range(2, 2 + d))
    B, k = x.shape[:2]
    spec_elems = math.prod(ns[:-1]) * (ns[-1] // 2 + 1)
    per_item = spec_elems * (k + len(ii)) * (16 if x.dtype == torch.float64 else 8)
    chunk = max(1, min(B, _CHUNK_BYTES // max(per_item, 1))) if mean_batch else B
    ii_t = torch.as_tensor(ii, device=x.device)
    jj_t = torch.as_tensor(jj, device=x.device)
    acc = None
    for start in range(0, B, chunk):
        F = torch.fft.rfftn(x[start : start + chunk], s=tuple(ns), dim=dims)
        prod = F.index_select(1, ii_t).conj() * F.index_select(1, jj_t)
        if not mean_batch:
            return prod
        part = prod.sum(0)
        acc = part if acc is None else acc + part
    return acc / B


def _inverse_window(G: torch.Tensor, ns: Sequence[int], L: int) -> torch.Tensor:
    """Inverse real FFT of spectra ``G (..., *spectrum)`` keeping only lags -L..L on each axis.

    The complex axes are inverted one at a time and cut to the 2L+1 wanted lags before the next
    axis is transformed (a pruned inverse: the later passes run on less data).
    """
    d = len(ns)
    lead = G.ndim - d
    for a in range(d - 1):
        ax = lead + a
        G = torch.fft.ifft(G, n=ns[a], dim=ax).index_select(ax, _lag_index(L, ns[a], G.device))
    ax = lead + d - 1
    g = torch.fft.irfft(G, n=ns[-1], dim=ax)
    return g.index_select(ax, _lag_index(L, ns[-1], g.device))


def _upper_lattice(x: torch.Tensor, L: int, mean_batch: bool) -> tuple[torch.Tensor, list, list]:
    """ĉ_ij(h) for pairs i <= j: ``(P, *(2L+1,)*d)`` (batch mean) or ``(B, P, …)``."""
    shape = x.shape[2:]
    ns = [_fft_len(w + L) for w in shape]
    ii, jj = pair_indices(x.shape[1])
    G = _cross_spectra(x, ii, jj, ns, mean_batch)
    c = _inverse_window(G, ns, L)
    return c / _pair_counts(shape, L, c.dtype, c.device), ii, jj


# --------------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------------


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
    flat = up.reshape(P, -1).index_select(1, sel)
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
    x = _as_batched(indicators, dim)
    L = _max_lag_for(r_max, bandwidth, x.shape[2:])
    up, _, _ = _upper_lattice(x, L, mean_batch=True)
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
    ii_t = torch.as_tensor(ii, device=x.device)
    jj_t = torch.as_tensor(jj, device=x.device)
    out = []
    for a in range(d):
        ax = 2 + a
        n = _fft_len(shape[a] + r_max)
        F = torch.fft.rfft(x, n=n, dim=ax)
        prod = F.index_select(1, ii_t).conj() * F.index_select(1, jj_t)
        # Sum over batch and every other axis first: one short inverse per pair.
        other = [0] + [2 + b for b in range(d) if b != a]
        g = torch.fft.irfft(prod.sum(dim=other), n=n, dim=-1)  # (P, n)
        pos = g[:, : r_max + 1]
        neg = torch.cat([g[:, :1], g[:, n - r_max :].flip(-1)], 1) if r_max > 0 else g[:, :1]
        count = (shape[a] - torch.arange(r_max + 1, device=x.device, dtype=g.dtype)) * (
            B * math.prod(shape) / shape[a]
        )
        out.append(_symmetric_from_upper(0.5 * (pos + neg) / count, k))
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
    scale: str = "correlation",
    bandwidth: float = 1.0,
) -> int:
    """The r_max rule of method.md §4.

    ``r0`` is the smallest r from which on every curve stays within ``tol`` of ``φ_i·φ_j``; the
    result is ``ceil(factor · r0)``, capped at ``cap`` and at a quarter of the smallest image side.

    "Within ``tol``" is measured, by default, on the correlation scale:
    ``|C_ij(r) − φ_iφ_j| <= tol · sqrt(φ_i(1−φ_i) φ_j(1−φ_j))`` — i.e. the indicator correlation
    coefficient has decayed below ``tol``. This is the same yardstick for every pair and every
    phase fraction (a rare phase is not held to a stricter absolute bound, nor a common one to a
    looser one).

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
    scale : {"correlation", "relative", "absolute"}
        What ``tol`` is relative to: the indicator standard deviations (default), ``φ_iφ_j``, or
        nothing (absolute probability).
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
    is_curves = arr.ndim == 3 and arr.shape[0] == arr.shape[1] and image_shape is not None
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
