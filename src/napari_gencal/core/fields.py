"""Moving-average Gaussian random fields: kernels, position-keyed white noise, FFT convolution, and
exact planar sections (method.md §1 and §3).

A field is ``X(s) = Σ_t k(t) W(s − t)`` with white noise ``W`` and a kernel ``k`` of bounded support
(radius ``m``) normalized to unit sum of squares, so that ``X`` has unit variance and covariance
``ρ = k ∗ k̃``.

* :func:`radial_kernel` — the high-parametric radial kernel ``k_θ(s) = θ[round(|s|)]``, optionally
  evaluated at scaled coordinates (anisotropy along z), differentiable in ``θ``.
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
    radii = kernel_radius(m, sc, dim)
    axes = [
        torch.arange(-r, r + 1, dtype=torch.float64, device=th.device) / s
        for r, s in zip(radii, sc, strict=True)
    ]
    grids = torch.meshgrid(*axes, indexing="ij")
    dist = torch.sqrt(sum(g * g for g in grids))
    # Nearest integer with ties rounded up (floor(d + 1/2)): deterministic, unlike round-half-even.
    idx = torch.floor(dist + 0.5).to(torch.long)
    inside = idx <= m
    if interpolation == "nearest":
        k = th[idx.clamp(max=m)] * inside.to(th.dtype)
    elif interpolation == "linear":
        # Piecewise linear in |s| between θ_j and θ_{j+1}: a continuous kernel, whose field has no
        # voxel-scale roughness from the jumps between shells (see docs/decisions/model.md).
        lo = torch.floor(dist).to(torch.long).clamp(max=m)
        frac = (dist - lo.to(dist.dtype)).clamp(0.0, 1.0).to(th.dtype)
        th_hi = torch.cat([th, th.new_zeros(1)])  # θ_{m+1} = 0: the kernel fades out at m + 1
        k = th[lo] * (1 - frac) + th_hi[(lo + 1).clamp(max=m + 1)] * frac
        k = k * inside.to(th.dtype)
    else:
        raise ValueError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
    norm2 = (k * k).sum()
    if float(norm2.detach()) <= 0.0:
        raise ValueError(
            "the kernel is identically zero; give theta with at least one non-zero value"
        )
    return k / torch.sqrt(norm2)


def _block_counter(ndim: int, index: tuple[int, ...]) -> np.ndarray:
    """Philox counter words for one block: word 0 is the running counter, the rest the position."""
    if ndim > 3:
        raise ValueError(f"block_noise supports 1 to 3 dimensions, got {ndim}")
    words = [0, 0, 0, 0]
    # Word 0 increments while drawing; its top byte holds the dimension so 2D and 3D never collide.
    words[0] = ndim << 56
    for i, b in enumerate(index[::-1]):
        words[3 - i] = b & _U64  # two's complement: negative block indices are distinct too
    # Explicit uint64: a plain list with values ≥ 2**63 would become float64 and collide.
    return np.array(words, dtype=np.uint64)


def block_noise(
    seed: int,
    shape: Sequence[int],
    origin: Sequence[int] | None = None,
    block: int | Sequence[int] = DEFAULT_BLOCK,
    stream: int = 0,
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype = torch.float64,
    threads: int | None = None,
) -> torch.Tensor:
    """Standard Gaussian white noise as a function of global voxel position.

    The lattice is cut into fixed blocks (``block`` voxels per axis, aligned at 0). The noise of a
    block is drawn by NumPy's Philox generator keyed by ``(seed, stream)`` with the block index as
    counter, so the value at a global position never depends on the window asked for: a sub-window
    equals the same part of a larger window exactly, whatever the chunking, and CPU and GPU get the
    same numbers (drawn on the CPU, then moved).

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
        Worker threads for drawing blocks (default: ``torch.get_num_threads()``).

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
    # Values are drawn as float32 and cast on assignment into the output, in the worker threads.
    out = np.empty(shape, dtype=np.float64 if dtype == torch.float64 else np.float32)

    def fill(index: tuple[int, ...]) -> None:
        gen = np.random.Generator(np.random.Philox(key=key, counter=_block_counter(nd, index)))
        vals = gen.standard_normal(blk, dtype=np.float32)
        src, dst = [], []
        for ax, bi in enumerate(index):
            start = bi * blk[ax]
            a = max(start, origin[ax])
            e = min(start + blk[ax], origin[ax] + shape[ax])
            src.append(slice(a - start, e - start))
            dst.append(slice(a - origin[ax], e - origin[ax]))
        out[tuple(dst)] = vals[tuple(src)]

    def fill_all(ixs: list[tuple[int, ...]]) -> None:
        for ix in ixs:
            fill(ix)

    indices = list(product(*[range(a, b + 1) for a, b in zip(lo, hi, strict=True)]))
    n_threads = threads if threads is not None else max(1, torch.get_num_threads())
    if n_threads > 1 and len(indices) > 256:
        # NumPy's generators release the GIL while filling, so blocks draw in parallel; one task
        # per thread keeps the pool's per-task overhead out (only for large windows).
        parts = [indices[i::n_threads] for i in range(n_threads)]
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(fill_all, parts))
    else:
        fill_all(indices)
    return torch.from_numpy(out).to(device=device, dtype=dtype)


def _kernel_fft(
    kernel: torch.Tensor, fft_shape: Sequence[int], centred: bool = True
) -> torch.Tensor:
    """rFFT of a kernel on a torus of ``fft_shape`` over the trailing axes.

    ``centred``: the kernel's centre sits at index 0 (a phase ramp ``exp(2πi k r / N)`` per axis
    instead of rolling a padded array); otherwise its corner does (enough for ``|FFT|²``).
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
    # FFT2 of every z-slice, (Kz, size, size//2+1); |·|² does not care where the centre sits.
    kf = _kernel_fft(kernel3d, (size, size), centred=False)
    return (kf.real**2 + kf.imag**2).sum(dim=0)


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
