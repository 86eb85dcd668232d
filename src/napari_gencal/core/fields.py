"""Moving-average Gaussian random fields: kernels, position-keyed white noise, FFT convolution, and
exact planar sections (method.md §1 and §3).

A field is ``X(s) = Σ_t k(t) W(s − t)`` with white noise ``W`` and a kernel ``k`` of bounded support
(radius ``m``) normalized to unit sum of squares, so that ``X`` has unit variance and covariance
``ρ = k ∗ k̃``.

* :func:`radial_kernel` (in :mod:`.kernels`, re-exported) — the high-parametric radial kernel
  ``k_θ(s) = θ[round(|s|)]``, optionally evaluated at scaled coordinates, differentiable in ``θ``.
* :func:`block_noise` — white noise that is a function of the *global* voxel position: it is drawn
  per fixed block from ``(seed, stream, block index)``, so any sub-window of a volume gets exactly
  the noise it would have inside the whole volume, on every device.
* :func:`moving_average` — FFT convolution, valid part (no wrap-around) or periodic.
* :func:`section_spectrum`, :func:`sample_section_fields` — the 2D spectrum of the planar section
  ``z = 0`` of a 3D field and a sampler of such sections at 2D cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import product

import numpy as np
import torch
from scipy.fft import next_fast_len

from .kernels import kernel_radius, radial_kernel

__all__ = [
    "radial_kernel",
    "kernel_radius",
    "block_noise",
    "moving_average",
    "section_spectrum",
    "section_size",
    "sample_section_fields",
    "DEFAULT_BLOCK",
]

#: Edge of the fixed noise blocks. Changing it changes every realization, so it is a constant of the
#: file format in practice; 16 keeps the over-draw at window edges low while the per-block overhead
#: (~10 µs for a generator) stays small against drawing 4096 values.
DEFAULT_BLOCK = 16

_U64 = (1 << 64) - 1


def _row_counter(ndim: int, row: tuple[int, ...], start: int) -> np.ndarray:
    """Philox counter of a row of blocks: word 0 is ``start`` (the first block's offset along the
    last axis, in counter steps), words 1–2 the row's block indices, word 3 the dimension."""
    if ndim > 3:
        raise ValueError(f"block_noise supports 1 to 3 dimensions, got {ndim}")
    # Offset by 2**63: rows that run from negative to non-negative blocks never wrap word 0
    # (a wrap would carry into word 1 and break the position keying).
    words = [(start + (1 << 63)) & _U64, 0, 0, ndim << 56]
    # Two's complement: negative block indices are distinct too.
    for i, b in enumerate(row[::-1]):
        words[1 + i] = b & _U64
    # Explicit uint64: a plain list with values ≥ 2**63 would become float64 and collide.
    return np.array(words, dtype=np.uint64)


def _box_muller(words: np.ndarray) -> np.ndarray:
    """Standard normals (float32), two per 64-bit word, in word order.

    Each word gives two 24-bit uniforms ``u1 ∈ (0, 1)`` (open: ``log`` stays finite) and ``u2 ∈
    [0, 1)``; ``(r cos 2πu2, r sin 2πu2)`` with ``r = sqrt(−2 log u1)``. The largest value is
    sqrt(2 · 25 log 2) ≈ 5.9 (the tail beyond has probability ≈ 4e-9).
    """
    u = words.view(np.uint32).reshape(-1, 2)
    a = (u[:, 0] >> 8).astype(np.float32)
    a += np.float32(0.5)
    a *= np.float32(2.0**-24)
    r = np.log(a)
    r *= np.float32(-2.0)
    np.sqrt(r, out=r)
    th = (u[:, 1] >> 8).astype(np.float32)
    th *= np.float32(2.0 * math.pi * 2.0**-24)
    out = np.empty((u.shape[0], 2), dtype=np.float32)
    np.cos(th, out=out[:, 0])
    np.sin(th, out=out[:, 1])
    out *= r[:, None]
    return out.reshape(-1)


def block_noise(
    seed: int,
    shape: Sequence[int],
    origin: Sequence[int] | None = None,
    block: int | Sequence[int] = DEFAULT_BLOCK,
    stream: int = 0,
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype = torch.float64,
    threads: int | None = None,
    out: np.ndarray | None = None,
) -> torch.Tensor:
    """Standard Gaussian white noise as a function of global voxel position.

    The lattice is cut into fixed blocks (``block`` voxels per axis, aligned at 0). Block ``b``
    gets the 64-bit words of NumPy's counter-based ``Philox`` generator, keyed by ``(seed,
    stream)``, at the counters ``b_last · c .. (b_last + 1) · c`` (``c`` steps per block) of the
    row of blocks ``b_rest``; each word gives two normals by Box–Muller. So the value at a global
    position never depends on the window asked for: a sub-window equals the same part of a larger
    window exactly, whatever the chunking, and CPU and GPU get the same numbers (drawn on the CPU,
    then moved). One generator is set up per row of blocks, not per block.

    Parameters
    ----------
    seed : int
        Non-negative seed (< 2**64).
    shape : sequence of int
        Window shape (1 to 3 axes).
    origin : sequence of int, optional
        Global position of the window's first voxel (may be negative). Default: zeros.
    block : int or sequence of int
        Block edge per axis. Part of the definition of a realization: keep the default.
    stream : int
        Independent stream number (one per field), non-negative.
    device, dtype
        Placement of the result. The draw itself is float32 (then converted), so the values do not
        depend on ``dtype``.
    threads : int, optional
        Worker threads for drawing rows (default: ``torch.get_num_threads()``).
    out : ndarray, optional
        Write the noise into this C-ordered NumPy array of ``shape`` (float32 or float64; e.g. a
        view of a reused FFT buffer) instead of a new one; the returned tensor then shares it
        (``device`` and ``dtype`` are ignored).

    Returns
    -------
    Tensor of ``shape``
    """
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    if not 1 <= nd <= 3 or any(s < 1 for s in shape):
        raise ValueError(f"noise shape must have 1 to 3 positive extents, got {shape}")
    origin = (0,) * nd if origin is None else tuple(int(o) for o in origin)
    if len(origin) != nd:
        raise ValueError(f"origin {origin} does not match the {nd}D shape {shape}")
    blk = (int(block),) * nd if np.isscalar(block) else tuple(int(b) for b in block)  # type: ignore[arg-type]
    if len(blk) != nd or any(b < 1 for b in blk):
        raise ValueError(f"block must be a positive edge per axis, got {block}")
    seed = int(seed)
    if not 0 <= seed <= _U64 or not 0 <= int(stream) <= _U64:
        raise ValueError(f"seed and stream must be integers in [0, 2**64), got {seed}, {stream}")
    key = np.array([seed, int(stream)], dtype=np.uint64)
    lo = [o // b for o, b in zip(origin, blk, strict=True)]
    hi = [(o + s - 1) // b for o, s, b in zip(origin, shape, blk, strict=True)]
    given_out = out is not None
    if out is None:
        out = np.empty(shape, dtype=np.float64 if dtype == torch.float64 else np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    vals = math.prod(blk)
    steps = -(-vals // 8)  # Philox 4x64 gives 4 words = 8 normals per counter step
    nbx = hi[-1] - lo[-1] + 1
    # Window part covered along the last axis, relative to the first block of the row.
    x0 = origin[-1] - lo[-1] * blk[-1]
    inner = blk[:-1]

    def fill(row: tuple[int, ...]) -> None:
        gen = np.random.Philox(key=key, counter=_row_counter(nd, row, lo[-1] * steps))
        z = _box_muller(gen.random_raw(nbx * steps * 4))
        # (block, *inner, last) → (*inner, block·last): the row as a slab of the lattice.
        z = z.reshape(nbx, steps * 8)[:, :vals].reshape(nbx, *inner, blk[-1])
        z = np.moveaxis(z, 0, -2).reshape(*inner, nbx * blk[-1])
        src, dst = window_rows(row)
        out[dst] = z[(*src, slice(x0, x0 + shape[-1]))]

    def window_rows(row: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """Slices of the row's blocks (src) and of the window (dst) along the row axes."""
        src, dst = [], []
        for ax, bi in enumerate(row):
            start = bi * blk[ax]
            a = max(start, origin[ax])
            e = min(start + blk[ax], origin[ax] + shape[ax])
            src.append(slice(a - start, e - start))
            dst.append(slice(a - origin[ax], e - origin[ax]))
        return tuple(src), tuple(dst)

    X = shape[-1]
    hx = blk[-1] // 2  # words per block line along the last axis
    # Word p of the row slab holds the values at positions 2p (cos) and 2p + 1 (sin).
    pe0, pe1 = -(-x0 // 2), -(-(x0 + X) // 2)  # words whose even position is in the window
    po0, po1 = x0 // 2, (x0 + X) // 2  # words whose odd position is in the window
    p0, p1 = min(pe0, po0), max(pe1, po1)

    def fill_fast(row: tuple[int, ...]) -> None:
        """The same values as ``fill``, with one copy less: the raw words are moved into lattice
        order, and Box–Muller writes straight into the window."""
        gen = np.random.Philox(key=key, counter=_row_counter(nd, row, lo[-1] * steps))
        src, dst = window_rows(row)
        w = gen.random_raw(nbx * steps * 4).reshape(nbx, *inner, hx)[(slice(None), *src)]
        w = np.ascontiguousarray(np.moveaxis(w, 0, -2))
        u = w.reshape(*w.shape[:-2], nbx * hx)[..., p0:p1].view(np.uint32)
        a = (u[..., 0::2] >> 8).astype(np.float32)
        a += np.float32(0.5)
        a *= np.float32(2.0**-24)
        r = np.log(a)
        r *= np.float32(-2.0)
        np.sqrt(r, out=r)
        th = (u[..., 1::2] >> 8).astype(np.float32)
        th *= np.float32(2.0 * math.pi * 2.0**-24)
        dest = out[dst]
        ev = slice(pe0 - p0, pe1 - p0)
        np.multiply(r[..., ev], np.cos(th[..., ev]), out=dest[..., 2 * pe0 - x0 :: 2])
        od = slice(po0 - p0, po1 - p0)
        np.multiply(r[..., od], np.sin(th[..., od]), out=dest[..., 2 * po0 + 1 - x0 :: 2])

    fast = vals == steps * 8 and blk[-1] % 2 == 0

    def fill_all(rows: list[tuple[int, ...]]) -> None:
        for r in rows:
            (fill_fast if fast else fill)(r)

    rows = list(product(*[range(a, b + 1) for a, b in zip(lo[:-1], hi[:-1], strict=True)]))
    n_threads = threads if threads is not None else max(1, torch.get_num_threads())
    if n_threads > 1 and len(rows) > 8 and nbx * vals * len(rows) > 1 << 18:
        # NumPy releases the GIL in the generator and the ufuncs, so rows draw in parallel; one
        # task per thread keeps the pool's per-task overhead out (only for large windows).
        parts = [rows[i::n_threads] for i in range(n_threads)]
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(fill_all, parts))
    else:
        fill_all(rows)
    if given_out:
        return torch.from_numpy(out)  # shares the caller's buffer: no copy, no conversion
    return torch.from_numpy(out).to(device=device, dtype=dtype)


def _even_spectrum(kernel: torch.Tensor, fft_shape: Sequence[int]) -> torch.Tensor:
    """Real half spectrum of a centred kernel that is even in each axis, by cosine sums.

    For ``k(s) = k(−s)`` per axis, the DFT of the kernel centred at index 0 is
    ``Σ_s k(s) ∏_a cos(2π k_a s_a / N_a)``: one small matrix product per axis (BLAS), instead of
    an FFT of the whole padded array; the result is real.
    """
    nd = len(fft_shape)
    radii = [(s - 1) // 2 for s in kernel.shape[-nd:]]
    K = kernel
    for i, (n, r) in enumerate(zip(fft_shape, radii, strict=True)):
        n = int(n)
        dev = kernel.device
        freqs = torch.arange(n // 2 + 1 if i == nd - 1 else n, dtype=torch.float64, device=dev)
        offs = torch.arange(-r, r + 1, dtype=torch.float64, device=dev)
        # (k·s mod N) keeps the cosine argument small, so float64 rounding stays at ~1e-16.
        C = torch.cos(2 * math.pi * torch.remainder(freqs[:, None] * offs[None, :], n) / n)
        # Contract the first trailing axis; the new frequency axis goes last, so after nd steps
        # the trailing axes are back in order.
        K = torch.tensordot(K, C.to(K.dtype), dims=([K.ndim - nd], [1]))
    return K


def _kernel_fft(
    kernel: torch.Tensor, fft_shape: Sequence[int], centred: bool = True
) -> torch.Tensor:
    """rFFT of a kernel on a torus of ``fft_shape`` over the trailing axes.

    ``centred``: the kernel's centre sits at index 0 (a phase ramp ``exp(2πi k r / N)`` per axis
    instead of rolling a padded array); otherwise its corner does (enough for ``|FFT|²``).
    For kernels that are even in every axis, :func:`_even_spectrum` gives the centred spectrum
    (real) much more cheaply.
    """
    nd = len(fft_shape)
    dims = list(range(-nd, 0))
    kf = torch.fft.rfftn(kernel, s=tuple(fft_shape), dim=dims)
    if not centred:
        return kf
    radii = [(s - 1) // 2 for s in kernel.shape[-nd:]]
    for i, (n, r) in enumerate(zip(fft_shape, radii, strict=True)):
        if r == 0:
            continue
        nk = kf.shape[dims[i]]
        k = torch.arange(nk, device=kernel.device, dtype=torch.float64)
        ramp = torch.polar(torch.ones_like(k), 2 * math.pi * ((k * r) % n) / n).to(kf.dtype)
        kf = kf * ramp.view(*([nk] + [1] * (nd - 1 - i)))
    return kf


def moving_average(
    noise: torch.Tensor,
    kernel: torch.Tensor,
    periodic: bool = False,
    kernel_fft: torch.Tensor | None = None,
) -> torch.Tensor:
    """Convolve white noise with a kernel by FFT.

    Parameters
    ----------
    noise : Tensor, shape ``(..., *N)``
        Noise over the trailing ``kernel.ndim`` axes (leading axes are a batch).
    kernel : Tensor, shape ``(2 r_0 + 1, …)``
        Centred kernel (odd extents).
    periodic : bool
        False (default): return the valid part ``N − 2r`` per axis, free of wrap-around (simulate
        the noise on the window enlarged by ``r``). True: circular convolution, output shape ``N``.
    kernel_fft : Tensor, optional
        Precomputed :func:`_kernel_fft` for the FFT shape used here (reuse across fields).

    Returns
    -------
    Tensor
    """
    nd = kernel.ndim
    if any(s % 2 == 0 for s in kernel.shape):
        raise ValueError(f"kernel extents must be odd (centred), got {tuple(kernel.shape)}")
    n = tuple(noise.shape[-nd:])
    radii = [(s - 1) // 2 for s in kernel.shape]
    dims = list(range(-nd, 0))
    if periodic:
        if any(s < k for s, k in zip(n, kernel.shape, strict=True)):
            raise ValueError(
                f"periodic field of shape {n} is smaller than the kernel {tuple(kernel.shape)}; "
                "enlarge the shape or reduce the kernel radius m"
            )
        fft_shape = n
    else:
        if any(s <= 2 * r for s, r in zip(n, radii, strict=True)):
            raise ValueError(
                f"noise of shape {n} leaves no valid part for a kernel of radius {radii}; "
                "the noise must exceed the output by the kernel radius on each side"
            )
        # Any FFT size ≥ N leaves the valid part free of wrap-around; pick a fast one.
        fft_shape = tuple(next_fast_len(s, real=True) for s in n)
    kf = _kernel_fft(kernel, fft_shape) if kernel_fft is None else kernel_fft
    out = torch.fft.irfftn(
        torch.fft.rfftn(noise, s=fft_shape, dim=dims) * kf, s=fft_shape, dim=dims
    )
    if periodic:
        return out
    return out[(..., *[slice(r, s - r) for r, s in zip(radii, n, strict=True)])]


def section_size(window: int, radius: int) -> int:
    """Torus edge ``L ≥ max(w + 2m, 4m + 1)`` on which a w×w section is exact (method.md §3)."""
    return int(next_fast_len(max(window + 2 * radius, 4 * radius + 1), real=True))


def section_spectrum(kernel3d: torch.Tensor, size: int) -> torch.Tensor:
    """2D spectrum of the planar section ``z = 0`` of the 3D field of ``kernel3d`` on a size² torus.

    ``S2(kx, ky) = (1/Lz) Σ_kz |FFT3(k)(kx, ky, kz)|²``, which by Parseval along z equals
    ``Σ_z |FFT2(k[z])(kx, ky)|²`` (computed that way: no 3D transform needed). It is the spectrum of
    the section covariance ``ρ(0, ·, ·)``, non-negative by construction, and differentiable.

    Parameters
    ----------
    kernel3d : Tensor, shape (Kz, Ky, Kx)
        Normalized 3D kernel.
    size : int
        Torus edge L; must be ≥ ``4 r + 1`` (``r`` the in-plane kernel radius) so the in-plane
        covariance does not alias; use :func:`section_size`.

    Returns
    -------
    Tensor, shape (size, size // 2 + 1)
        Half spectrum (for ``irfft2``).
    """
    if kernel3d.ndim != 3:
        raise ValueError(f"section_spectrum needs a 3D kernel, got shape {tuple(kernel3d.shape)}")
    r = max((kernel3d.shape[1] - 1) // 2, (kernel3d.shape[2] - 1) // 2)
    if size < 4 * r + 1:
        raise ValueError(
            f"section torus size {size} is too small for in-plane kernel radius {r}; it must be at "
            f"least 4·r + 1 = {4 * r + 1}"
        )
    with torch.no_grad():
        even = torch.equal(kernel3d, kernel3d.flip(-1)) and torch.equal(kernel3d, kernel3d.flip(-2))
    if even:
        # Radial kernels: each centred z-slice has a real spectrum (cosine sums, two small matrix
        # products); forward and backward are matmuls instead of padded FFTs, whose backward
        # (a zero-filled full spectrum per slice) was ~40 % of a calibration step.
        sz = _even_spectrum(kernel3d, (size, size))
        return (sz * sz).sum(dim=0)
    # FFT2 of every z-slice, (Kz, size, size//2+1); |·|² does not care where the centre sits.
    kf = _kernel_fft(kernel3d, (size, size), centred=False)
    return (kf.real**2 + kf.imag**2).sum(dim=0)


_OCTANT_CACHE: dict[tuple, tuple[torch.Tensor, ...]] = {}


def _octant_geometry(m: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Index, fraction, support mask and multiplicity of the octant ``[0, m]³`` (cached)."""
    key = (int(m), str(device))
    if key not in _OCTANT_CACHE:
        ax = torch.arange(m + 1, dtype=torch.float64, device=device)
        dist = torch.sqrt(ax[:, None, None] ** 2 + ax[None, :, None] ** 2 + ax[None, None, :] ** 2)
        idx = torch.floor(dist + 0.5).to(torch.long)  # nearest shell, ties up (radial_kernel)
        lo = torch.floor(dist).to(torch.long).clamp(max=m)
        frac = (dist - lo.to(dist.dtype)).clamp(0.0, 1.0)
        inside = idx <= m
        # Each octant voxel stands for 2^(number of non-zero coordinates) voxels of the kernel.
        w = torch.where(ax > 0, 2.0, 1.0)
        mult = w[:, None, None] * w[None, :, None] * w[None, None, :]
        if len(_OCTANT_CACHE) > 16:
            _OCTANT_CACHE.clear()
        _OCTANT_CACHE[key] = (idx.clamp(max=m), lo, frac, inside, mult)
    return _OCTANT_CACHE[key]


def radial_section_spectrum(
    theta: torch.Tensor, size: int, interpolation: str = "linear"
) -> torch.Tensor:
    """Section spectrum of the isotropic radial kernel θ (unit scale), from its octant.

    Equal to ``section_spectrum(radial_kernel(theta, 3, interpolation=…), size)`` (tested), but an
    isotropic kernel is even in every axis, so its cosine sums need only the octant ``[0, m]³``
    with weights 1 (zero coordinate) or 2: one eighth of the gathers whose backward pass
    (scatter-adds into θ) dominated a calibration step, and a quarter of the matrix products.
    """
    th = theta
    m = th.numel() - 1
    if size < 4 * m + 1:
        raise ValueError(
            f"section torus size {size} is too small for kernel radius {m}; it must be at least "
            f"4·m + 1 = {4 * m + 1}"
        )
    idx, lo, frac, inside, mult = _octant_geometry(m, th.device)
    if interpolation == "nearest":
        k = th[idx] * inside.to(th.dtype)
    elif interpolation == "linear":
        fr = frac.to(th.dtype)
        th_hi = torch.cat([th, th.new_zeros(1)])
        k = (th[lo] * (1 - fr) + th_hi[(lo + 1).clamp(max=m + 1)] * fr) * inside.to(th.dtype)
    else:
        raise ValueError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
    norm2 = (k * k * mult.to(th.dtype)).sum()
    offs = torch.arange(m + 1, dtype=torch.float64, device=th.device)
    wts = torch.where(offs > 0, 2.0, 1.0)

    def cosines(n_freq: int) -> torch.Tensor:
        freqs = torch.arange(n_freq, dtype=torch.float64, device=th.device)
        c = torch.cos(2 * math.pi * torch.remainder(freqs[:, None] * offs[None, :], size) / size)
        return (c * wts[None, :]).to(th.dtype)

    e = torch.tensordot(k, cosines(size // 2 + 1), dims=([2], [1]))  # (z, y, fx)
    e = torch.tensordot(e, cosines(size), dims=([1], [1]))  # (z, fx, fy)
    s2 = (e * e * wts.to(th.dtype)[:, None, None]).sum(0).transpose(0, 1)  # (fy, fx)
    return s2 / norm2


def sample_section_fields(
    spectrum: torch.Tensor,
    n: int,
    window: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` independent w×w sections of a unit-variance GRF with the given section spectrum.

    ``X = IFFT2(sqrt(S2) · FFT2(W))`` on the torus, cropped to the window: a stationary field whose
    covariance is the (periodized) section covariance; exact on the window when the torus edge is
    ≥ w + 2r.

    Parameters
    ----------
    spectrum : Tensor, shape (L, L // 2 + 1)
        From :func:`section_spectrum`.
    n : int
        Number of sections.
    window : int
        Section edge w (≤ L).
    generator : torch.Generator, optional
        Source of the white noise (on the spectrum's device).

    Returns
    -------
    Tensor, shape (n, window, window)
    """
    size = spectrum.shape[-2]
    if window > size:
        raise ValueError(f"section window {window} exceeds the torus size {size}")
    w = torch.randn(
        n, size, size, generator=generator, device=spectrum.device, dtype=spectrum.dtype
    )
    # clamp keeps the gradient of sqrt finite where the spectrum vanishes.
    amp = spectrum.clamp_min(1e-20).sqrt()
    x = torch.fft.irfft2(torch.fft.rfft2(w) * amp, s=(size, size))
    return x[:, :window, :window]
