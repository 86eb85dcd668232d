"""Realizations of the excursion-set model: label volumes, chunk-exact blocks, exact planar sections
(method.md §3).

* :func:`generate` — a hard-threshold 2D or 3D label array with the user's label values; no
  wrap-around by default (noise on the window enlarged by the kernel radius), periodic on request;
  optionally in chunks that reproduce the whole volume voxel for voxel.
* :func:`generate_block` — the phase indices of any sub-block given its global origin: what a
  distributed engine (Dask) calls per chunk.
* :func:`sample_sections` — batched, differentiable planar sections of the 3D model at 2D cost, for
  calibration; :func:`generate_sections` — their hard-threshold label form.

Noise streams: field ``X1`` is stream 0, ``X2`` stream 1, copy ``j`` of ``εX, εY, εZ`` streams
``2 + 3j, 3 + 3j, 4 + 3j``. With the fixed noise blocks of :func:`fields.block_noise` a realization
is a function of ``(model, seed, global position)`` only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import product

import numpy as np
import torch
from scipy.fft import next_fast_len

from .device import resolve_device
from .fields import (
    _even_spectrum,
    _kernel_fft,
    block_noise,
    kernel_radius,
    sample_section_fields,
    section_size,
)
from .model import ExcursionModel, ExcursionModule
from .phases import to_labels

__all__ = [
    "generate",
    "generate_block",
    "generate_fields",
    "iter_chunks",
    "auto_chunks",
    "working_memory",
    "section_fields",
    "sample_sections",
    "generate_sections",
    "field_stream",
]

_PRECISIONS = {"double": torch.float64, "single": torch.float32}


def field_stream(name: str, copy: int = 0) -> int:
    """Noise stream number of a field (``copy`` for the χ² building blocks)."""
    if name == "X1":
        return 0
    if name == "X2":
        return 1
    base = {"eps_X": 2, "eps_Y": 3, "eps_Z": 4}
    if name not in base:
        raise ValueError(f"unknown field {name!r}")
    return base[name] + 3 * int(copy)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        sh = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be 2 or 3 positive integers, got {shape!r}") from None
    if len(sh) not in (2, 3) or any(s < 1 for s in sh):
        raise ValueError(f"shape must be 2 (y, x) or 3 (z, y, x) positive integers, got {shape!r}")
    return sh


def generate_fields(
    model: ExcursionModel,
    origin: Sequence[int],
    shape: Sequence[int],
    seed: int = 0,
    device: str | torch.device = "cpu",
    periodic: bool = False,
    precision: str = "double",
    spectra_cache: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fields ``Z1, Z2`` on a 3D block ``[origin, origin + shape)`` of the global lattice.

    Non-periodic: each field is the valid part of the FFT convolution of block noise drawn on the
    block enlarged by the kernel radius, so the values at a position do not depend on the block.
    Periodic: the block is a torus (``origin`` must be 0). Memory: the fields are accumulated one at
    a time (peak ≈ a few padded arrays plus three kernel spectra), not all kept.

    Returns
    -------
    Z1, Z2 : Tensor of ``shape`` (Z2 is None for a two-phase model)
    """
    model.validate()
    dtype = _PRECISIONS.get(precision)
    if dtype is None:
        raise ValueError(f"precision must be 'double' or 'single', got {precision!r}")
    dev = resolve_device(device)
    shape = tuple(int(s) for s in shape)
    origin = tuple(int(o) for o in origin)
    radii = kernel_radius(int(model.m), model.support_scale, 3)
    if periodic:
        if any(o != 0 for o in origin):
            raise ValueError(
                "a periodic volume is generated whole (origin 0); chunks are not periodic"
            )
        if any(s < 2 * r + 1 for s, r in zip(shape, radii, strict=True)):
            raise ValueError(
                f"a periodic volume of shape {shape} is smaller than the kernel support "
                f"{tuple(2 * r + 1 for r in radii)}; enlarge it or reduce m"
            )
        noise_shape, noise_origin = shape, origin
        fft_shape = shape
    else:
        noise_shape = tuple(s + 2 * r for s, r in zip(shape, radii, strict=True))
        noise_origin = tuple(o - r for o, r in zip(origin, radii, strict=True))
        # Any FFT size ≥ the noise window keeps the valid part free of wrap-around.
        fft_shape = tuple(int(next_fast_len(s, real=True)) for s in noise_shape)
    dims = (-3, -2, -1)
    # The kernel is centred at index 0 of the torus, so the valid interior of the noise window
    # starts at r.
    crop = tuple(slice(r, r + s) for r, s in zip(radii, shape, strict=True))
    a = float(model.a)
    ca, sa = math.sqrt(1.0 - a), math.sqrt(a)
    three = int(model.n_phases) == 3
    cplx = torch.complex128 if dtype == torch.float64 else torch.complex64

    def kfft(name: str, factor: float) -> torch.Tensor:
        """The kernel's spectrum times ``factor`` (the field's weight, folded in once)."""
        key = (name, factor, fft_shape, periodic, dtype, str(dev))
        if spectra_cache is not None and key in spectra_cache:
            return spectra_cache[key]
        k = model.kernel3d(name, dtype=dtype, device=dev)
        if torch.equal(k, k.flip((-3, -2, -1))):
            # Even kernels (all radial ones): a real spectrum, by cosine sums, stored with a
            # trailing axis of 1 so that it multiplies the (re, im) view of a spectrum.
            kf = _even_spectrum(k, fft_shape).mul_(factor).unsqueeze(-1)
        else:
            kf = _kernel_fft(k, fft_shape, centred=True).mul_(factor)
        if spectra_cache is not None:
            if any(kk[2] != fft_shape for kk in spectra_cache):
                spectra_cache.clear()  # hold one FFT shape at a time (bounded memory)
            spectra_cache[key] = kf
        return kf

    # Buffers reused by every field: on large volumes, fresh arrays per field cost more in page
    # faults than the arithmetic. The noise fills a corner of `real_in`; the rest stays zero.
    real_in = torch.zeros(fft_shape, dtype=dtype)  # CPU: the noise is drawn there
    noise_view = real_in[tuple(slice(0, s) for s in noise_shape)].numpy()
    real_dev = real_in if dev.type == "cpu" else torch.zeros(fft_shape, dtype=dtype, device=dev)
    spec_shape = (*fft_shape[:-1], fft_shape[-1] // 2 + 1)
    spec = torch.empty(spec_shape, dtype=cplx, device=dev)
    shared = torch.empty(spec_shape, dtype=cplx, device=dev)
    real_out = torch.empty(fft_shape, dtype=dtype, device=dev)

    def noise_spectrum(name: str, copy: int, into: torch.Tensor) -> torch.Tensor:
        block_noise(
            seed, noise_shape, noise_origin, stream=field_stream(name, copy), out=noise_view
        )
        if real_dev is not real_in:
            real_dev.copy_(real_in)
        return torch.fft.rfftn(real_dev, dim=dims, out=into)

    def times(s: torch.Tensor, kf: torch.Tensor) -> torch.Tensor:
        """``s *= kf`` in place; a real ``kf`` scales the (re, im) pairs (a real product)."""
        if kf.is_complex():
            return s.mul_(kf)
        torch.view_as_real(s).mul_(kf)
        return s

    def field(s: torch.Tensor) -> torch.Tensor:
        """The field of spectrum ``s`` on the block (a view of the reused output buffer)."""
        torch.fft.irfftn(s, s=fft_shape, dim=dims, out=real_out)
        return real_out if periodic else real_out[crop]

    # Z1 = σ1·X1 + Σ_j (√(1−a)·εX_j + √a·εZ_j)², Z2 likewise with εY_j: each square's two fields
    # are summed in Fourier space (one inverse FFT for both), and √a·εZ_j's spectrum is shared.
    Z1 = field(times(noise_spectrum("X1", 0, spec), kfft("X1", float(model.sigma1)))).clone()
    Z2 = None
    if three:
        Z2 = field(times(noise_spectrum("X2", 0, spec), kfft("X2", float(model.sigma2)))).clone()
    kx, kz = kfft("eps_X", ca), kfft("eps_Z", sa)
    ky = kfft("eps_Y", ca) if three else None
    for j in range(int(model.n_chi2)):
        times(noise_spectrum("eps_Z", j, shared), kz)
        xt = field(times(noise_spectrum("eps_X", j, spec), kx).add_(shared))
        Z1.addcmul_(xt, xt)
        if three:
            yt = field(times(noise_spectrum("eps_Y", j, spec), ky).add_(shared))
            Z2.addcmul_(yt, yt)
    return Z1, Z2


def _phase_indices(model: ExcursionModel, Z1: torch.Tensor, Z2: torch.Tensor | None) -> np.ndarray:
    """Hard truncation rule (:mod:`.model.truncation`) → phase indices 0..k−1 (uint8)."""
    from .model.truncation import hard_indices

    lam1, lam2, t, c = (float(v) for v in (model.lambda1, model.lambda2, model.tilt, model.coating))
    return hard_indices(Z1, Z2, lam1, lam2, t, c).cpu().numpy()


def generate_block(
    model: ExcursionModel,
    origin: Sequence[int],
    shape: Sequence[int],
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "double",
    spectra_cache: dict | None = None,
) -> np.ndarray:
    """Phase indices (0..k−1, uint8) of the block ``[origin, origin + shape)`` of the realization.

    The block is computed from noise on the block plus a halo of the kernel radius, keyed by global
    position, so stitching blocks reproduces :func:`generate` of the whole volume (non-periodic).
    ``spectra_cache`` (a dict, reused across calls for one model) keeps the kernel spectra of the
    last FFT shape, so equal-sized chunks do not recompute them.
    """
    seed = _check_seed(seed)
    if len(tuple(shape)) != 3 or len(tuple(origin)) != 3:
        raise ValueError("generate_block works on 3D blocks: give origin and shape as (z, y, x)")
    Z1, Z2 = generate_fields(model, origin, shape, seed, device, False, precision, spectra_cache)
    return _phase_indices(model, Z1, Z2)


def iter_chunks(
    shape: Sequence[int], chunks: int | Sequence[int]
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``(origin, shape)`` of each chunk of a regular chunking of ``shape``."""
    shape = tuple(int(s) for s in shape)
    ch = (int(chunks),) * len(shape) if np.isscalar(chunks) else tuple(int(c) for c in chunks)  # type: ignore[arg-type]
    if len(ch) != len(shape) or any(c < 1 for c in ch):
        raise ValueError(f"chunks must be one positive size per axis of {shape}, got {chunks!r}")
    for o in product(*[range(0, s, c) for s, c in zip(shape, ch, strict=True)]):
        yield o, tuple(min(c, s - oo) for oo, c, s in zip(o, ch, shape, strict=True))


#: Working memory (bytes) that ``generate(chunks="auto")`` allows one whole-volume pass; larger
#: volumes are generated in chunks that fit it.
MEMORY_BUDGET = 2 * 2**30


def working_memory(model: ExcursionModel, shape: Sequence[int], precision: str = "double") -> int:
    """Estimated peak bytes of :func:`generate_fields` on a 3D block of ``shape`` (non-periodic).

    Two real FFT buffers, two half spectra, five real kernel half spectra and the two fields:
    about ``itemsize · (6.5 · N_fft + 2 · N_block)`` (measured peaks are within ~25 %).
    """
    radii = kernel_radius(int(model.m), model.support_scale, 3)
    n_fft = math.prod(
        int(next_fast_len(s + 2 * r, real=True)) for s, r in zip(shape, radii, strict=True)
    )
    item = 8 if precision == "double" else 4
    return int(item * (6.5 * n_fft + 2 * math.prod(shape)))


def auto_chunks(
    model: ExcursionModel,
    shape: Sequence[int],
    precision: str = "double",
    budget: int | None = None,
) -> tuple[int, ...] | None:
    """Chunk shape for a 3D ``shape`` whose whole-volume pass would exceed ``budget`` bytes
    (default :data:`MEMORY_BUDGET`).

    None when the whole volume fits. Otherwise each axis is cut into equal pieces, splitting the
    currently longest piece until a chunk fits (equal chunks share their kernel spectra). On the
    development CPU such chunks were also faster than the whole volume from 320³ on.
    """
    budget = MEMORY_BUDGET if budget is None else int(budget)
    sh = tuple(int(s) for s in shape)
    if working_memory(model, sh, precision) <= budget:
        return None
    parts = [1] * len(sh)
    while True:
        edge = [-(-s // p) for s, p in zip(sh, parts, strict=True)]
        if working_memory(model, edge, precision) <= budget or max(edge) == 1:
            return tuple(edge)
        parts[int(np.argmax(edge))] += 1


def generate(
    model: ExcursionModel,
    shape: Sequence[int],
    seed: int = 0,
    device: str | torch.device = "auto",
    periodic: bool = False,
    chunks: int | Sequence[int] | str | None = "auto",
    precision: str = "double",
) -> np.ndarray:
    """A hard-threshold realization of the model as a label array.

    Parameters
    ----------
    model : ExcursionModel
    shape : (z, y, x) or (y, x)
        A 2D shape gives the planar section ``z = 0`` of the 3D model (not a 2D model).
    seed : int
        Same seed, model and device → identical output.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``…
    periodic : bool
        Periodic boundary (a torus; each side must be ≥ the kernel support). Default: non-periodic,
        exact in law, no wrap-around.
    chunks : "auto", int, (z, y, x) or None
        Generate block by block with a halo of the kernel radius (bounded memory); the result equals
        the whole-volume result voxel for voxel. ``"auto"`` (default): whole when the volume's
        working memory fits :data:`MEMORY_BUDGET` (2 GiB; 256³ in double does), else equal chunks
        that fit it (:func:`auto_chunks`). None: always whole. Periodic volumes are always whole.
    precision : {"double", "single"}
        Arithmetic of the fields. Double (default) makes chunked and whole agree exactly except for
        voxels within ~1e-12 of a threshold; single is ~2× faster but flips ~1e-6 of the voxels
        between chunkings.

    Returns
    -------
    ndarray
        Labels from ``model.phase_map`` (its dtype), else phase numbers ``1..k`` as uint8.
    """
    model.validate()
    seed = _check_seed(seed)
    sh = _check_shape(shape)
    two_d = len(sh) == 2
    radii = kernel_radius(int(model.m), model.support_scale, 3)
    if two_d:
        # A 2D image is the section z = 0 of the 3D model; periodic: a z-torus of the kernel's
        # extent leaves the in-plane law exact (the covariance vanishes beyond 2 r_z < L_z).
        sh3 = (2 * radii[0] + 1 if periodic else 1, *sh)
    else:
        sh3 = sh
    if isinstance(chunks, str):
        if chunks != "auto":
            raise ValueError(f"chunks must be 'auto', None, a size or sizes, got {chunks!r}")
        chunks = None if periodic else auto_chunks(model, sh3, precision)
        if chunks is not None and two_d:
            chunks = chunks[1:]
    if periodic and chunks is not None:
        raise ValueError(
            "chunks cannot be combined with periodic=True; generate periodic volumes whole"
        )
    if chunks is None:
        Z1, Z2 = generate_fields(model, (0, 0, 0), sh3, seed, device, periodic, precision)
        idx = _phase_indices(model, Z1, Z2)
        del Z1, Z2
    else:
        ch = chunks
        if two_d:
            ch = (1, *((int(chunks),) * 2 if np.isscalar(chunks) else tuple(chunks)))  # type: ignore[arg-type]
        idx = np.empty(sh3, dtype=np.uint8)
        cache: dict = {}
        # Equal-shaped chunks one after another: the cache holds one shape's spectra at a time.
        for o, s in sorted(iter_chunks(sh3, ch), key=lambda c: c[1]):
            idx[tuple(slice(a, a + b) for a, b in zip(o, s, strict=True))] = generate_block(
                model, o, s, seed, device, precision, cache
            )
    if two_d:
        idx = idx[0]
    if model.phase_map is not None:
        return to_labels(idx, model.phase_map)
    return (idx + 1).astype(np.uint8)


def section_fields(
    module: ExcursionModule,
    batch: int,
    size: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fields ``Z1, Z2`` on ``batch`` independent exact planar sections ``(B, size, size)``.

    Per call: each kernel's section spectrum (``Kz`` 2D FFTs, equivalent to one 3D FFT), then one
    2D FFT pair per field per sample (method.md §3). Differentiable w.r.t. the module's parameters.
    ``Z2`` is None for a two-phase model.
    """
    if int(batch) < 1 or int(size) < 1:
        raise ValueError(f"batch and size must be ≥ 1, got {batch}, {size}")
    B, w = int(batch), int(size)
    n = module.n_chi2
    # In-plane kernel radius: m·s for a model with length scale s (anisotropy acts along z only).
    L = section_size(w, max(
        max(kernel_radius(module.m, module.kernel_scale(n), 3)[1:]) for n in module.used_kernels()
    ))  # fmt: skip
    spec = module.section_spectra(module.used_kernels(), L)

    def draw(nm: str, count: int) -> torch.Tensor:
        return sample_section_fields(spec[nm], count, w, generator)

    a = module.a
    ca, sa = torch.sqrt(1.0 - a), torch.sqrt(a)
    # The n copies share a kernel: one batched draw of n·B fields each.
    ez = draw("eps_Z", n * B).view(n, B, w, w)
    xt = ca * draw("eps_X", n * B).view(n, B, w, w) + sa * ez
    Z1 = (xt * xt).sum(0) + module.sigma1 * draw("X1", B)
    Z2 = None
    if module.n_phases == 3:
        yt = ca * draw("eps_Y", n * B).view(n, B, w, w) + sa * ez
        Z2 = (yt * yt).sum(0) + module.sigma2 * draw("X2", B)
    return Z1, Z2


def sample_sections(
    module: ExcursionModule,
    batch: int,
    size: int,
    generator: torch.Generator | None = None,
    soft: bool = True,
    nu: float | None = None,
) -> torch.Tensor:
    """Exact planar (x–y) sections of the 3D model at 2D cost (method.md §3).

    The law of each ``size × size`` section is exactly that of the section ``z = 0`` of a 3D
    realization; sections in a batch are independent. Cost: see :func:`section_fields`.

    Parameters
    ----------
    module : ExcursionModule
    batch : int
        Number of sections B.
    size : int
        Section edge w.
    generator : torch.Generator, optional
        Randomness (on the module's device).
    soft : bool
        Sigmoid phases (differentiable w.r.t. the module's parameters) or hard thresholds.
    nu : float, optional
        Sigmoid sharpness (default: the module's).

    Returns
    -------
    Tensor, shape (B, k, size, size)
    """
    Z1, Z2 = section_fields(module, batch, size, generator)
    return module.phases(Z1, Z2, soft=soft, nu=nu)


def generate_sections(
    model: ExcursionModel,
    n: int,
    size: int,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """``n`` independent hard-threshold planar sections ``(n, size, size)`` with the user's labels.

    Uses :func:`sample_sections` (exact in law, 2D cost); randomness from a torch generator seeded
    with ``seed`` on the chosen device (same seed + device → identical output).
    """
    seed = _check_seed(seed)
    dev = resolve_device(device)
    module = ExcursionModule.from_model(model, device=dev, dtype=torch.float64)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    with torch.no_grad():
        ind = sample_sections(module, n, size, generator=gen, soft=False)
    idx = ind.argmax(dim=1).to(torch.uint8).cpu().numpy()
    if model.phase_map is not None:
        return to_labels(idx, model.phase_map)
    return (idx + 1).astype(np.uint8)
