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
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .io import LabelImage
    from .phases import PhaseMap

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


def _as_batched(
    indicators: Any, dim: int | None, check: bool = True, with_sum: bool = False
) -> Any:
    """Return ``(B, k, *spatial)`` floating indicators; infer the spatial dimension when needed.

    A 4D input is ambiguous: ``(B, k, H, W)`` (a batch of 2D images) or ``(k, Z, Y, X)`` (one
    volume). Without ``dim`` it is resolved by which axis the indicators sum to one over (a batch of
    2D images wins a tie); when neither does, the caller must say. With ``with_sum`` the result is
    ``(x, sums_to_one)`` where the second item is True/False when the check was already made here,
    else None.
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
    sum_dev = None  # max |Σ_i x_i − 1| over the phase axis, when it is computed here
    if dim is None:
        if nd == 3:
            dim = 2
        elif nd == 5:
            dim = 3
        elif nd == 4:
            with torch.no_grad():
                # More than 16 "phases" along axis 1 means axis 1 is spatial: a (k, Z, Y, X) volume.
                if x.shape[1] <= 16:
                    sum_dev = float((x.sum(1) - 1).abs().amax())
                    if sum_dev <= 1e-4:
                        dim = 2
                if dim is None:
                    sum_dev = float((x.sum(0) - 1).abs().amax())
                    if sum_dev <= 1e-4:
                        dim = 3
            if dim is None:
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
            # One pass: NaN propagates into min/max, ±inf lands outside [0, 1].
            lo, hi = (float(v) for v in torch.aminmax(x))
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError(
                "indicators contain NaN values; soft phase probabilities must be finite numbers "
                "in [0, 1] — check the model output or mask the invalid voxels"
            )
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise ValueError(
                f"indicators must lie in [0, 1] (one-hot phases or phase probabilities), got "
                f"values in [{lo:.4g}, {hi:.4g}]; pass one_hot(indices) or probabilities, not "
                "label values"
            )
    if with_sum:
        return x, (None if sum_dev is None else sum_dev <= 1e-5)
    return x


def _fft_len(n: int) -> int:
    """Smallest FFT-friendly length >= n (5-smooth, what pocketfft/cuFFT are fastest on)."""
    import scipy.fft

    return int(scipy.fft.next_fast_len(int(n), real=True))


def _lag_window(t: torch.Tensor, dim: int, L: int) -> torch.Tensor:
    """Lags −L..L of a circular result along ``dim`` (negative lags wrap to the end), centred.

    Two slices and a concatenation: much faster than ``index_select`` along inner axes on CPU.
    """
    n = t.shape[dim]
    return (
        torch.cat([t.narrow(dim, n - L, L), t.narrow(dim, 0, L + 1)], dim)
        if L
        else t.narrow(dim, 0, 1)
    )


def _take(t: torch.Tensor, dim: int, idx: torch.Tensor) -> torch.Tensor:
    """``index_select`` along ``dim`` done on the leading axis (fast path on CPU)."""
    return t.movedim(dim, 0).index_select(0, idx).movedim(0, dim)


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


#: "auto": SciPy's pocketfft for CPU tensors that need no gradient (data statistics), torch.fft
#: otherwise; "torch": always torch.fft. SciPy's threaded FFTs were 1.5–4x faster than torch's on
#: the development CPU for the sizes used here; results agree to float round-off.
FFT_BACKEND = "auto"


def _scipy_ok(t: torch.Tensor) -> bool:
    return (
        FFT_BACKEND == "auto"
        and t.device.type == "cpu"
        and not (torch.is_grad_enabled() and t.requires_grad)
    )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _rfftn(t: torch.Tensor, s: Sequence[int], dim: Sequence[int]) -> torch.Tensor:
    if _scipy_ok(t):
        import scipy.fft

        out = scipy.fft.rfftn(_np(t), s=tuple(s), axes=tuple(dim), workers=torch.get_num_threads())
        return torch.from_numpy(out)
    return torch.fft.rfftn(t, s=tuple(s), dim=tuple(dim))


def _rfft(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if _scipy_ok(t):
        import scipy.fft

        return torch.from_numpy(
            scipy.fft.rfft(_np(t), n=n, axis=dim, workers=torch.get_num_threads())
        )
    return torch.fft.rfft(t, n=n, dim=dim)


def _ifft(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if _scipy_ok(t):
        import scipy.fft

        return torch.from_numpy(
            scipy.fft.ifft(_np(t), n=n, axis=dim, workers=torch.get_num_threads())
        )
    return torch.fft.ifft(t, n=n, dim=dim)


def _irfft(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if _scipy_ok(t):
        import scipy.fft

        return torch.from_numpy(
            scipy.fft.irfft(_np(t), n=n, axis=dim, workers=torch.get_num_threads())
        )
    return torch.fft.irfft(t, n=n, dim=dim)


def _cross(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``conj(a) · b``; into ``out`` when given and no gradient is needed on the CPU.

    NumPy's conjugate-then-multiply is ~5x faster than torch's product with a conjugate view on
    the CPU, and writing into a reused buffer avoids the page faults of a fresh full-size array.
    """
    if _scipy_ok(a) and _scipy_ok(b):
        an, bn = _np(a), _np(b)
        o = np.empty_like(bn) if out is None else _np(out)
        np.conjugate(an, out=o)
        np.multiply(o, bn, out=o)
        return torch.from_numpy(o) if out is None else out
    return a.conj() * b


def _window_spectrum(
    shape: Sequence[int], ns: Sequence[int], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Half spectrum of the window indicator 1_W zero padded to ``ns``: an outer product of 1D FFTs.

    The window is a box, so its transform is separable; no d-dimensional FFT is needed.
    """
    d = len(shape)
    out = None
    for a, (w, n) in enumerate(zip(shape, ns, strict=True)):
        box = torch.ones(int(w), dtype=dtype, device=device)
        f = torch.fft.rfft(box, n=int(n)) if a == d - 1 else torch.fft.fft(box, n=int(n))
        out = f if out is None else out[..., None] * f
    return out


def _phase_spectra(
    x: torch.Tensor, kf: int, ns: Sequence[int], derive_last: bool
) -> list[torch.Tensor]:
    """rFFTs of the phases of ``x (b, k, *spatial)``, zero padded to ``ns``: k ``(b, *spec)``.

    With ``derive_last`` only the first ``kf = k − 1`` phases are transformed; the last one's
    spectrum is that of the window minus theirs (ξ_k = 1_W − Σ_{i<k} ξ_i inside the window, exact
    algebra), which saves one forward FFT per image.
    """
    d = x.ndim - 2
    F = _rfftn(x[:, :kf].contiguous(), ns, range(2, 2 + d))
    Fp = list(F.unbind(1))
    if derive_last:
        if _scipy_ok(x):
            # In place, one plane at a time: no full-size window spectrum or temporaries.
            Fn = _np(F)
            last = np.add(Fn[:, 0], Fn[:, 1]) if kf > 1 else -Fn[:, 0]
            if kf > 1:
                for i in range(2, kf):
                    last += Fn[:, i]
                np.negative(last, out=last)
            # 1D transforms of the box per axis (full FFT, real FFT on the last axis).
            sp = x.shape[2:]
            axes = [
                np.fft.fft(np.ones(w), n).astype(last.dtype)
                for w, n in zip(sp[:-1], ns[:-1], strict=True)
            ]
            axes.append(np.fft.rfft(np.ones(sp[-1]), ns[-1]).astype(last.dtype))
            rest = axes[1]
            for a in axes[2:]:
                rest = rest[..., None] * a
            if len(sp) == 2:  # a plane-sized temporary is cheap; a Python loop per row is not
                last += axes[0][:, None] * rest
            else:
                for z, f in enumerate(axes[0]):
                    last[:, z] += f * rest
            Fp.append(torch.from_numpy(last))
        else:
            win = _window_spectrum(x.shape[2:], ns, x.dtype, x.device).to(F.dtype)
            Fp.append(win - F.sum(1))
    return Fp


def _inverse_window_np(G: np.ndarray, ns: Sequence[int], L: int, out: np.ndarray) -> None:
    """:func:`_inverse_window` for a NumPy spectrum that may be destroyed, written into ``out``.

    The complex axes are inverted in place; after each one only the two slabs of lags −L..−1 (at
    the end of the axis) and 0..L (at its start) go on, as views, so no full-size array is copied
    or allocated; the 2^(d−1) small real inverses at the end write their lags into ``out``.
    """
    import scipy.fft

    workers = torch.get_num_threads()
    d = len(ns)
    lead = G.ndim - d

    def rec(v: np.ndarray, a: int, dst: tuple) -> None:
        ax = lead + a
        n = ns[a]
        if a == d - 1:
            r = scipy.fft.irfft(v, n=n, axis=ax, workers=workers)
            pre = (slice(None),) * ax
            if L:
                out[dst + (slice(0, L),)] = r[pre + (slice(n - L, n),)]
            out[dst + (slice(L, 2 * L + 1),)] = r[pre + (slice(0, L + 1),)]
            return
        v = scipy.fft.ifft(v, n=n, axis=ax, workers=workers, overwrite_x=True)
        pre = (slice(None),) * ax
        if L:
            rec(v[pre + (slice(n - L, n),)], a + 1, dst + (slice(0, L),))
        rec(v[pre + (slice(0, L + 1),)], a + 1, dst + (slice(L, 2 * L + 1),))

    rec(G, 0, (slice(None),) * lead)


def _gram_spectra(
    x: torch.Tensor, kf: int, ii: list[int], jj: list[int], ns: Sequence[int], derive_last: bool
) -> torch.Tensor:
    """Batch mean of conj(F_i)·F_j for the pairs (ii, jj): ``(P, *spectrum)``.

    One rfftn per transformed phase and image (see :func:`_phase_spectra`); the batch is processed
    in chunks so that a stack of many sections never holds all its spectra at once.
    """
    B, k = x.shape[:2]
    spec_elems = math.prod(ns[:-1]) * (ns[-1] // 2 + 1)
    per_item = spec_elems * k * (16 if x.dtype == torch.float64 else 8)
    chunk = max(1, min(B, _CHUNK_BYTES // max(per_item, 1)))
    acc = None
    for start in range(0, B, chunk):
        # Separate per-phase tensors: indexing one stacked F per pair would make autograd build
        # a full-size zero tensor per use in the backward pass (it dominated the backward time).
        Fp = _phase_spectra(x[start : start + chunk], kf, ns, derive_last)
        # Elementwise products summed over the batch (a batched k×k matmul per frequency is
        # far slower on CPU: tiny complex matrices, tens of thousands of them).
        buf = torch.empty_like(Fp[0]) if _scipy_ok(Fp[0]) else None
        part = torch.stack([_cross(Fp[i], Fp[j], buf).sum(0) for i, j in zip(ii, jj, strict=True)])
        acc = part if acc is None else acc + part
    return acc / B


def _inverse_window(G: torch.Tensor, ns: Sequence[int], L: int) -> torch.Tensor:
    """Inverse real FFT of spectra ``G (..., *spectrum)`` keeping only lags -L..L on each axis.

    The complex axes are inverted one at a time and cut to the 2L+1 wanted lags before the next
    axis is transformed (a pruned inverse: later passes run on less data); the real axis is last.
    """
    d = len(ns)
    lead = G.ndim - d
    for a in range(d - 1):
        G = _lag_window(_ifft(G, ns[a], lead + a), lead + a, L)
    ax = lead + d - 1
    return _lag_window(_irfft(G, ns[-1], ax), ax, L)


def _sums_to_one(x: torch.Tensor) -> bool:
    with torch.no_grad():
        return bool((x.sum(1) - 1).abs().max() <= 1e-5)


def _upper_lattice(
    x: torch.Tensor, L: int, mean_batch: bool, sums_to_one: bool | None = None
) -> tuple[torch.Tensor, list, list]:
    """ĉ_ij(h) for pairs i <= j: ``(P, *(2L+1,)*d)`` (batch mean) or ``(B, P, …)``.

    When the phases sum to one at every pixel (hard labels, or the model's Ξ̃3 = 1 − Ξ̃1 − Ξ̃2)
    and no gradient is wanted, only the first k−1 phases are transformed: the last phase's
    spectrum is the window's (an outer product of 1D FFTs) minus theirs. That saves one forward FFT
    per image. With gradients the general path runs, so the derivative with respect to every phase
    channel is the true one.
    """
    B, k = x.shape[:2]
    shape = x.shape[2:]
    ns = [_fft_len(w + L) for w in shape]
    count = _pair_counts(shape, L, x.dtype, x.device)
    use_sum = (
        k >= 2
        and not (torch.is_grad_enabled() and x.requires_grad)
        and (sums_to_one if sums_to_one is not None else _sums_to_one(x))
    )
    kf = k - 1 if use_sum else k
    ii, jj = pair_indices(k)
    if mean_batch and B == 1:
        # One image or volume: one spectrum per phase, then one pair spectrum at a time.
        Fp = [f[0] for f in _phase_spectra(x, kf, ns, use_sum)]
        if _scipy_ok(x):
            # One scratch spectrum for all pairs, inverted in place: on a large volume a fresh
            # full-size array per step costs more in page faults than the arithmetic.
            buf = torch.empty_like(Fp[0])
            cf = torch.empty((len(ii),) + (2 * L + 1,) * len(shape), dtype=x.dtype)
            for p, (i, j) in enumerate(zip(ii, jj, strict=True)):
                _inverse_window_np(_np(_cross(Fp[i], Fp[j], buf)), ns, L, _np(cf[p]))
        else:
            cf = torch.stack(
                [_inverse_window(Fp[i].conj() * Fp[j], ns, L) for i, j in zip(ii, jj, strict=True)]
            )
    elif mean_batch:
        G = _gram_spectra(x, kf, ii, jj, ns, use_sum)
        if G[0].numel() * len(ii) * G.element_size() <= _CHUNK_BYTES:
            cf = _inverse_window(G, ns, L)
        else:  # large 3D spectra: one pair at a time keeps the memory to one spectrum
            cf = torch.stack([_inverse_window(G[p], ns, L) for p in range(len(ii))], 0)
    else:
        Fp = _phase_spectra(x, kf, ns, use_sum)
        cf = torch.stack(
            [_inverse_window(Fp[i].conj() * Fp[j], ns, L) for i, j in zip(ii, jj, strict=True)],
            1,
        )
    return cf / count, ii, jj


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


# --------------------------------------------------------------------------------------------------
# front-end result
# --------------------------------------------------------------------------------------------------

_AXIS_NAMES = ("z", "y", "x")


def _column_token(s: str) -> str:
    """A label or phase name made safe for a CSV column name."""
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in str(s)).strip("_") or "phase"


@dataclass
class TPPFResult:
    """Radial (and directional) TPPF curves of a label image, ready to save or plot.

    Attributes
    ----------
    r : ndarray
        Distances in pixels, ``0 .. r_max``.
    curves : ndarray
        ``(k, k, r_max+1)`` radial curves ``C_ij(r)``.
    phase_labels : tuple of int
        Label value of each phase (phase order).
    phase_names : tuple of str
        Display name of each phase.
    fractions : ndarray
        Volume fractions ``φ_i``.
    voxel_size : float or None
        Physical pixel size (isotropic in the analysed plane/volume) for ``r_phys``.
    unit : str or None
        Unit of ``voxel_size``.
    directional : ndarray or None
        ``(d, k, k, r_max+1)`` curves along each analysed axis.
    directional_axes : tuple of str
        Axis names of ``directional`` (e.g. ``("y", "x")`` for sections normal to z).
    bandwidth : float
        Kernel bandwidth (pixels).
    mode : str
        ``"2D"``, ``"3D"`` or ``"sections normal to <axis>"``.
    n_images : int
        Number of 2D images averaged (1 for 3D).
    """

    r: np.ndarray
    curves: np.ndarray
    phase_labels: tuple[int, ...]
    phase_names: tuple[str, ...]
    fractions: np.ndarray
    voxel_size: float | None = None
    unit: str | None = None
    directional: np.ndarray | None = None
    directional_axes: tuple[str, ...] = ()
    bandwidth: float = 1.0
    mode: str = "2D"
    n_images: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def r_max(self) -> int:
        """Largest distance (pixels)."""
        return int(self.r[-1])

    @property
    def n_phases(self) -> int:
        """Number of phases ``k``."""
        return self.curves.shape[0]

    def _tokens(self) -> list[str]:
        named = self.phase_names and not all(n.startswith("label ") for n in self.phase_names)
        src = self.phase_names if named else tuple(str(v) for v in self.phase_labels)
        return [_column_token(s) for s in src]

    def columns(self) -> dict[str, np.ndarray]:
        """The CSV table as ordered columns: r, r_phys (if a voxel size is known), C_<a>_<b>, …"""
        tok = self._tokens()
        cols: dict[str, np.ndarray] = {"r": self.r.astype(np.int64)}
        if self.voxel_size is not None:
            cols["r_phys"] = self.r * float(self.voxel_size)
        ii, jj = pair_indices(self.n_phases)
        for i, j in zip(ii, jj, strict=True):
            cols[f"C_{tok[i]}_{tok[j]}"] = self.curves[i, j]
        if self.directional is not None:
            for a, name in enumerate(self.directional_axes):
                for i, j in zip(ii, jj, strict=True):
                    cols[f"C_{tok[i]}_{tok[j]}_{name}"] = self.directional[a, i, j]
        return cols

    def to_csv(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the curves as CSV (atomic; refuses to replace a file unless ``overwrite``).

        Columns: ``r`` (pixels), ``r_phys`` (when the voxel size is known), ``C_<a>_<b>`` for every
        pair ``a <= b`` (phase names, else label values), then directional columns
        ``C_<a>_<b>_<axis>`` when present.
        """
        from .io import atomic_write

        cols = self.columns()
        names = list(cols)
        table = np.column_stack([cols[n] for n in names])

        def _write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(",".join(names) + "\n")
                for row in table:
                    fh.write(",".join(f"{v:.10g}" for v in row) + "\n")

        return atomic_write(path, _write, overwrite=overwrite)

    def figure(self, figsize: tuple[float, float] = (6.4, 4.2)) -> Figure:
        """A matplotlib Figure (no pyplot): every pair curve and its limit ``φ_iφ_j`` (dotted)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.add_subplot()
        x = self.r if self.voxel_size is None else self.r * float(self.voxel_size)
        ii, jj = pair_indices(self.n_phases)
        names = self.phase_names
        for p, (i, j) in enumerate(zip(ii, jj, strict=True)):
            color = f"C{p % 10}"
            ax.plot(x, self.curves[i, j], color=color, label=f"{names[i]} – {names[j]}")
            ax.axhline(self.fractions[i] * self.fractions[j], color=color, ls=":", lw=0.8)
        if self.voxel_size is None:
            unit = "pixels"
        else:
            unit = self.unit or f"units of the voxel size {self.voxel_size:g}"
        ax.set_xlabel(f"distance r ({unit})")
        ax.set_ylabel("C_ij(r)")
        ax.set_title(f"Two-point coverage probabilities ({self.mode})")
        ax.set_xlim(0, x[-1] if len(x) > 1 else 1)
        ax.legend(fontsize="small", ncols=2)
        return fig

    plot = figure


def _voxel_scalar(voxel_size: Any, axes: Sequence[int]) -> float | None:
    """One isotropic spacing for the analysed axes, or None when unknown or anisotropic."""
    if voxel_size is None:
        return None
    vs = np.atleast_1d(np.asarray(voxel_size, dtype=np.float64))
    if vs.size == 1:
        return float(vs[0])
    sel = vs[list(axes)] if vs.size > max(axes) else vs
    if np.ptp(sel) > 0.01 * sel.mean():
        return None  # r in pixels is not one physical distance then; report pixels only
    return float(sel.mean())


def tppf_of_labels(
    image: np.ndarray | LabelImage,
    phase_map: PhaseMap | None = None,
    phases: str | Sequence[int] | None = None,
    axis: str | int | None = None,
    r_max: int | None = None,
    bandwidth: float = 1.0,
    device: str | torch.device | None = "auto",
    *,
    voxel_size: float | Sequence[float] | None = None,
    directional: bool = True,
    r_max_options: dict[str, Any] | None = None,
) -> TPPFResult:
    """TPPF curves of a segmented image: the one call the CLI, API and widgets use.

    Parameters
    ----------
    image : ndarray or LabelImage
        A 2D image ``(y, x)`` or a 3D volume ``(z, y, x)`` of label values.
    phase_map : PhaseMap, optional
        Which label is which phase; inferred (or built from ``phases``) when absent.
    phases : str or sequence of int, optional
        Label values in phase order, e.g. ``"0,85,170"``.
    axis : {"z", "y", "x", 0, 1, 2, None, "none"}
        For a volume: ``None`` analyses it in 3D; an axis treats it as a stack of 2D sections
        normal to that axis (``"z"``: the x–y planes) whose curves are averaged (Eq. 25).
    r_max : int, optional
        Largest distance in pixels; by default the rule of :func:`choose_r_max`.
    bandwidth : float
        Kernel bandwidth in pixels.
    device : str or torch.device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
    voxel_size : float or sequence of float, optional
        Physical voxel size (taken from a LabelImage when not given).
    directional : bool
        Also compute the curves along each analysed axis.
    r_max_options : dict, optional
        Extra keyword arguments for :func:`choose_r_max` (``tol``, ``factor``, ``cap``, ``scale``).

    Returns
    -------
    TPPFResult
    """
    from .device import resolve_device
    from .phases import as_sections, infer_phase_map, one_hot, to_indices

    unit = None
    if hasattr(image, "phase_map") and hasattr(image, "data"):
        phase_map = phase_map or image.phase_map
        voxel_size = voxel_size if voxel_size is not None else image.voxel_size
        unit = image.unit
        data = np.asarray(image.data)
    else:
        data = np.asarray(image)
    if data.ndim not in (2, 3):
        raise ValueError(f"expected a 2D image or a 3D volume, got an array of shape {data.shape}")
    pm = phase_map if phase_map is not None else infer_phase_map(data, phases)
    idx = to_indices(data, pm)
    if isinstance(axis, str) and axis.lower() in ("none", "3d", ""):
        axis = None
    dev = resolve_device(device)
    k = pm.n_phases
    if data.ndim == 3 and axis is not None:
        ax = {"z": 0, "y": 1, "x": 2}.get(axis, axis) if isinstance(axis, str) else int(axis)
        if ax not in (0, 1, 2):
            raise ValueError(f"axis must be z, y, x (or 0, 1, 2) or none; got {axis!r}")
        sec = as_sections(idx, ax)
        plane_axes = [a for a in range(3) if a != ax]
        mode = f"sections normal to {_AXIS_NAMES[ax]}"
        x = one_hot(sec, k, batch=True, device=dev)
    else:
        plane_axes = list(range(data.ndim))
        mode = f"{data.ndim}D"
        x = one_hot(idx, k, device=dev).unsqueeze(0)
    axes_names = tuple(_AXIS_NAMES[3 - data.ndim + a] for a in plane_axes)
    shape = tuple(x.shape[2:])
    if min(shape) < 8:
        raise ValueError(
            f"the analysed image shape {shape} is too small for two-point statistics: every side "
            "needs at least 8 pixels (rather 100 or more); use a larger image or another axis"
        )
    fractions = x.mean(dim=(0,) + tuple(range(2, x.ndim))).double().cpu().numpy()
    with torch.no_grad():
        # One lattice estimate serves the r_max rule, the radial and the axis curves.
        if r_max is None:
            opts = dict(r_max_options or {})
            limit = max(1, min(int(opts.get("cap", 100)), min(shape) // 4))
            bandwidth = _check_radial_args(limit, bandwidth)[1]
        else:
            r_max, bandwidth = _check_radial_args(r_max, bandwidth)
            limit = r_max
        L = _max_lag_for(limit, bandwidth, shape)
        up, _, _ = _upper_lattice(x, L, mean_batch=True)
        if r_max is None:
            probe = _symmetric_from_upper(_radial_from_upper(up, L, limit, bandwidth, True), k)
            r_max = choose_r_max(probe.double().cpu().numpy(), fractions, image_shape=shape, **opts)
            # The regression at r uses the same lattice window L whatever the largest r, so the
            # curves up to r_max are the probe's first values (no second regression).
            curves = probe[..., : r_max + 1]
        else:
            curves = _symmetric_from_upper(_radial_from_upper(up, L, r_max, bandwidth, True), k)
        direc = None
        if directional:
            direc = _directional_from_upper(up, L, r_max, k).double().cpu().numpy()
    return TPPFResult(
        r=np.arange(r_max + 1),
        curves=curves.double().cpu().numpy(),
        phase_labels=pm.labels,
        phase_names=pm.display_names,
        fractions=fractions,
        voxel_size=_voxel_scalar(voxel_size, plane_axes if data.ndim == 3 else [0, 1]),
        unit=unit,
        directional=direc,
        directional_axes=axes_names if directional else (),
        bandwidth=float(bandwidth),
        mode=mode,
        n_images=int(x.shape[0]),
    )
