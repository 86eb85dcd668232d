"""FFT machinery of the TPPF estimators: input handling, FFT back end, spectra, the upper lattice.

Everything here is private to :mod:`napari_gencal.core.tppf` except :func:`pair_indices`:
checking and batching phase indicators (``_as_batched``), FFT-friendly lengths, the SciPy/torch FFT
switch (``FFT_BACKEND``) and the spectrum memory budget (``_CHUNK_BYTES``), per-phase and pair
spectra with the last phase derived from the window, pruned inverse transforms of lags ``-L..L``,
and ``_upper_lattice``, the minus-sampling estimate ``ĉ_ij(h)`` for the pairs ``i <= j`` on which
every estimator in :mod:`.estimators` and the front end in :mod:`.result` is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

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
