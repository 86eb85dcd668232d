"""Random-field primitives against independent truth: brute-force loops, SciPy convolutions,
analytic covariances and the χ² law."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage, signal, stats

from napari_gencal.core.fields import (
    block_noise,
    kernel_radius,
    moving_average,
    radial_kernel,
    radial_section_spectrum,
    sample_section_fields,
    section_size,
    section_spectrum,
)


def _brute_kernel(theta, scale):
    """Loop version of the radial kernel, written independently of the vectorized one."""
    m = len(theta) - 1
    radii = [math.ceil(m * s - 1e-9) for s in scale]
    k = np.zeros([2 * r + 1 for r in radii])
    for idx in np.ndindex(k.shape):
        d = math.sqrt(sum(((i - r) / s) ** 2 for i, r, s in zip(idx, radii, scale, strict=True)))
        j = int(math.floor(d + 0.5))
        if j <= m:
            k[idx] = theta[j]
    return k / math.sqrt((k**2).sum())


@pytest.mark.parametrize("scale", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (0.6, 1.0, 1.0)])
def test_radial_kernel_matches_loop_and_is_normalized(scale):
    theta = np.array([1.0, 0.8, 0.5, -0.2, 0.1])
    k = radial_kernel(theta, dim=3, scale=scale).numpy()
    ref = _brute_kernel(theta, scale)
    assert k.shape == ref.shape
    assert k.shape[0] == 2 * kernel_radius(4, scale)[0] + 1
    np.testing.assert_allclose(k, ref, atol=1e-14)
    assert abs((k**2).sum() - 1.0) < 1e-12
    # symmetric under s → −s (the field is a convolution, orientation must not matter)
    np.testing.assert_allclose(k, k[::-1, ::-1, ::-1], atol=1e-14)


def test_radial_kernel_is_differentiable_and_rejects_bad_theta():
    th = torch.tensor([1.0, 0.5, 0.25], requires_grad=True)
    k = radial_kernel(th)
    (k[2, 2, 3] * 3.0).backward()
    assert th.grad is not None and torch.isfinite(th.grad).all() and th.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="NaN"):
        radial_kernel([1.0, float("nan")])
    with pytest.raises(ValueError, match="zero"):
        radial_kernel([0.0, 0.0])
    with pytest.raises(ValueError, match="scale"):
        radial_kernel([1.0, 0.5], scale=(0.0, 1.0, 1.0))


def test_block_noise_depends_only_on_global_position():
    whole = block_noise(7, (40, 37, 50), origin=(-20, -5, 3), block=16, stream=3)
    part = block_noise(7, (11, 20, 9), origin=(-13, 2, 30), block=16, stream=3)
    np.testing.assert_array_equal(part.numpy(), whole[7:18, 7:27, 27:36].numpy())
    # threaded and single-threaded draws agree
    single = block_noise(7, (40, 37, 50), origin=(-20, -5, 3), block=16, stream=3, threads=1)
    np.testing.assert_array_equal(single.numpy(), whole.numpy())
    # other streams / seeds / blocks are different noise
    other = block_noise(7, (40, 37, 50), origin=(-20, -5, 3), block=16, stream=4)
    assert not np.allclose(other.numpy(), whole.numpy())
    b = block_noise(1, (32, 32, 32), origin=(-16, -16, -16), block=16).numpy()
    blocks = [
        b[i : i + 16, j : j + 16, k : k + 16] for i in (0, 16) for j in (0, 16) for k in (0, 16)
    ]
    for i in range(8):
        for j in range(i):
            assert not np.array_equal(blocks[i], blocks[j])


@pytest.mark.parametrize("shape", [(70,), (9, 70), (5, 6, 70)])
def test_block_noise_windows_across_the_origin_agree(shape):
    # Rows of blocks are drawn along the last axis from the window's first block: windows that
    # start at negative, zero and positive blocks must see the same values where they overlap.
    nd = len(shape)
    whole = block_noise(5, shape, origin=(-3,) * (nd - 1) + (-40,), stream=2).numpy()
    for x0, w in [(-40, 70), (-17, 30), (-1, 5), (0, 30), (9, 21)]:
        part = block_noise(5, shape[:-1] + (w,), origin=(-3,) * (nd - 1) + (x0,), stream=2)
        np.testing.assert_array_equal(part.numpy(), whole[..., x0 + 40 : x0 + 40 + w])


def test_block_noise_is_standard_normal():
    x = block_noise(3, (64, 64, 64), origin=(-10, 0, 5)).numpy().ravel()
    n = x.size
    # i.i.d. N(0,1): mean has SE 1/sqrt(n), variance SE sqrt(2/n); 4 SE tolerance.
    assert abs(x.mean()) < 4 / math.sqrt(n)
    assert abs(x.var() - 1.0) < 4 * math.sqrt(2 / n)
    assert stats.kstest(x[::7], "norm").pvalue > 1e-3


def test_block_noise_is_white_across_pairs_blocks_rows_and_streams():
    # Box–Muller makes two values per 64-bit word (neighbours along x), rows of blocks share a
    # generator: none of that may show as correlation. Lag correlations of i.i.d. N(0, 1) have
    # SE 1/sqrt(n); 4 SE tolerance. Tails: P(|z| > 3) = 0.0027 with binomial SE.
    x = block_noise(11, (64, 64, 64), origin=(-8, -24, -3), stream=4).numpy().astype(np.float64)
    y = block_noise(11, (64, 64, 64), origin=(-8, -24, -3), stream=5).numpy().astype(np.float64)
    for lag in [(0, 0, 1), (0, 0, 2), (0, 1, 0), (1, 0, 0), (0, 0, 16), (0, 16, 0), (16, 0, 0)]:
        a = x[: 64 - lag[0], : 64 - lag[1], : 64 - lag[2]]
        b = x[lag[0] :, lag[1] :, lag[2] :]
        assert abs((a * b).mean()) < 4 / math.sqrt(a.size), lag
    assert abs((x * y).mean()) < 4 / math.sqrt(x.size)
    p3 = 2 * stats.norm.sf(3)
    assert abs((np.abs(x) > 3).mean() - p3) < 4 * math.sqrt(p3 * (1 - p3) / x.size)


def test_moving_average_valid_and_periodic_match_scipy():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((15, 17, 19))
    kern = rng.standard_normal((5, 3, 7))
    out = moving_average(torch.from_numpy(noise), torch.from_numpy(kern)).numpy()
    ref = signal.convolve(noise, kern, mode="valid")
    np.testing.assert_allclose(out, ref, atol=1e-10)
    per = moving_average(torch.from_numpy(noise), torch.from_numpy(kern), periodic=True).numpy()
    ref_p = ndimage.convolve(noise, kern, mode="wrap")
    np.testing.assert_allclose(per, ref_p, atol=1e-10)
    with pytest.raises(ValueError, match="valid part"):
        moving_average(torch.zeros(4, 10, 10), torch.from_numpy(kern))


def _covariance_of_kernel(k):
    """ρ = k ∗ k̃ for all lags (full correlation, lag 0 at the centre)."""
    return signal.correlate(k, k, mode="full")


def test_grf_covariance_equals_kernel_autocorrelation():
    theta = np.exp(-0.5 * (np.arange(5) / 1.5) ** 2)
    k = radial_kernel(theta, dim=3)
    R, N = 4, 48
    fields = torch.stack(
        [moving_average(block_noise(s, (N,) * 3), k, periodic=True) for s in range(R)]
    ).numpy()
    rho = _covariance_of_kernel(k.numpy())
    c = np.array(rho.shape) // 2
    nvox = R * N**3
    sum_rho2 = (rho**2).sum()
    for h in [(0, 0, 0), (1, 0, 0), (0, 2, 0), (0, 0, 3), (2, 2, 1), (5, 0, 0)]:
        prod = fields * np.roll(fields, shift=[-v for v in h], axis=(1, 2, 3))
        emp = prod.mean()
        # Var of the mean of X(s)X(s+h) for a Gaussian field: (1/N) Σ_t [ρ(t)² + ρ(t+h)ρ(t−h)]
        # ≤ 2 Σ ρ² / N; 4 standard errors.
        tol = 4 * math.sqrt(2 * sum_rho2 / nvox)
        true = rho[c[0] + h[0], c[1] + h[1], c[2] + h[2]]
        assert abs(emp - true) < tol, (h, emp, true, tol)
    assert abs(rho[tuple(c)] - 1.0) < 1e-12  # unit variance by normalization


@pytest.mark.parametrize("even", [False, True])
def test_section_spectrum_is_the_planar_covariance_spectrum(even):
    rng = np.random.default_rng(1)
    k = torch.from_numpy(rng.standard_normal((5, 7, 7)))
    if even:  # even in y and x, like every radial kernel: the cosine-sum path runs
        k = k + k.flip(-1)
        k = k + k.flip(-2)
    k = k / k.pow(2).sum().sqrt()
    L = 16
    S2 = section_spectrum(k, L).numpy()
    # independent: the section covariance ρ(0, hy, hx) by brute-force correlation, periodized on L×L
    rho = _covariance_of_kernel(k.numpy())
    plane = rho[rho.shape[0] // 2]
    per = np.zeros((L, L))
    cy, cx = plane.shape[0] // 2, plane.shape[1] // 2
    for iy in range(plane.shape[0]):
        for ix in range(plane.shape[1]):
            per[(iy - cy) % L, (ix - cx) % L] += plane[iy, ix]
    ref = np.fft.rfft2(per).real
    np.testing.assert_allclose(S2, ref, atol=1e-10)
    assert (S2 >= 0).all()
    # same as (1/Lz) Σ_kz |FFT3|² (method.md's formula) with Lz = 9 ≥ 2·2+1
    k3 = np.zeros((9, L, L))
    k3[:5, :7, :7] = k.numpy()
    f3 = np.fft.fftn(k3)
    np.testing.assert_allclose(S2, (np.abs(f3) ** 2).sum(0)[:, : L // 2 + 1] / 9, atol=1e-10)
    with pytest.raises(ValueError, match="too small"):
        section_spectrum(k, 12)


def test_sampled_sections_have_the_section_covariance():
    theta = np.array([1.0, 0.9, 0.6, 0.3, 0.1])
    k = radial_kernel(torch.tensor(theta), dim=3, scale=(1.7, 1.0, 1.0))
    w = 40
    L = section_size(w, 4)
    assert L >= max(w + 8, 17)
    S2 = section_spectrum(k, L)
    gen = torch.Generator().manual_seed(0)
    B = 64
    x = sample_section_fields(S2, B, w, gen).numpy()
    rho = _covariance_of_kernel(k.numpy())
    plane = rho[rho.shape[0] // 2]
    c = plane.shape[0] // 2
    sum_rho2 = (plane**2).sum()
    for hy, hx in [(0, 0), (1, 0), (0, 2), (3, 1), (6, 0)]:
        emp = (x[:, : w - hy, : w - hx] * x[:, hy:, hx:]).mean()
        n = B * (w - hy) * (w - hx)
        tol = 4 * math.sqrt(2 * sum_rho2 / n)  # 4 SE, as in the 3D covariance test
        assert abs(emp - plane[c + hy, c + hx]) < tol, (hy, hx, emp, plane[c + hy, c + hx])


def test_chi2_marginal_of_sections():
    """Σ_j X_j² of n unit-variance sections is χ²_n; pixels 2m+1 apart are independent."""
    theta = np.array([1.0, 0.7, 0.3])
    k = radial_kernel(torch.tensor(theta), dim=3)
    w, n, B = 50, 3, 20
    S2 = section_spectrum(k, section_size(w, 2))
    gen = torch.Generator().manual_seed(5)
    x = sample_section_fields(S2, n * B, w, gen).view(n, B, w, w)
    chi = (x**2).sum(0)[:, ::5, ::5].numpy().ravel()  # spacing 5 = 2m+1: i.i.d. samples
    assert stats.kstest(chi, stats.chi2(n).cdf).pvalue > 1e-3
    # a wrong number of degrees of freedom is detected
    assert stats.kstest(chi, stats.chi2(n + 1).cdf).pvalue < 1e-3


@pytest.mark.parametrize("interp", ["nearest", "linear"])
def test_even_spectrum_equals_centred_fft(interp):
    from napari_gencal.core.fields import _even_spectrum, _kernel_fft

    theta = torch.linspace(1.0, 0.1, 6, dtype=torch.float64)
    for dim, scale, shape in [(3, (1.7, 1.0, 1.0), (40, 31, 26)), (2, None, (27, 30))]:
        k = radial_kernel(theta, dim, scale=scale, interpolation=interp)
        ref = _kernel_fft(k, shape, centred=True)
        got = _even_spectrum(k, shape)
        # An even kernel centred at 0 has a real spectrum; both are sums of <= 10^4 terms of
        # size <= 1, so they agree to float64 round-off.
        assert got.shape == ref.shape
        np.testing.assert_allclose(got.numpy(), ref.real.numpy(), atol=1e-12)
        assert float(ref.imag.abs().max()) < 1e-12


@pytest.mark.parametrize("interp", ["linear", "nearest"])
@pytest.mark.parametrize("m", [1, 6, 13])
def test_octant_section_spectrum_equals_the_full_kernel_route(interp, m):
    # The calibration's fast route (octant cosine sums) must give the section spectrum of the full
    # 3D kernel and the same gradient with respect to θ.
    g = torch.Generator().manual_seed(m)
    th = torch.randn(m + 1, generator=g, dtype=torch.float64, requires_grad=True)
    size = 4 * m + 7
    fast = radial_section_spectrum(th, size, interp)
    full = section_spectrum(radial_kernel(th, 3, interpolation=interp), size)
    assert fast.shape == full.shape == (size, size // 2 + 1)
    torch.testing.assert_close(fast, full, rtol=1e-10, atol=1e-12)
    weight = torch.rand(full.shape, generator=g, dtype=torch.float64)
    (g_fast,) = torch.autograd.grad((fast * weight).sum(), th)
    (g_full,) = torch.autograd.grad((full * weight).sum(), th)
    torch.testing.assert_close(g_fast, g_full, rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match="too small"):
        radial_section_spectrum(th, 4 * m, interp)


@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_radial_kernel_gradient_of_a_stretched_kernel_is_exact(interpolation):
    # The linear kernel's backward is a weighted histogram over the shells (not autograd's
    # scatter): checked against finite differences, and the values against a direct evaluation.
    th = torch.linspace(1.0, 0.1, 9, dtype=torch.float64).requires_grad_()
    f = lambda t: radial_kernel(t, 3, scale=(1.0, 1.7, 0.8), interpolation=interpolation)  # noqa: E731
    assert torch.autograd.gradcheck(f, (th,))
    k = f(th).detach()
    zz, yy, xx = torch.meshgrid(*[torch.arange(-(n // 2), n // 2 + 1, dtype=torch.float64)
                                  for n in k.shape], indexing="ij")  # fmt: skip
    d = torch.sqrt(zz**2 + (yy / 1.7) ** 2 + (xx / 0.8) ** 2)
    t = th.detach()
    if interpolation == "linear":
        lo = torch.floor(d).long().clamp(max=8)
        fr = (d - lo).clamp(0, 1)
        ext = torch.cat([t, t.new_zeros(1)])
        ref = t[lo] * (1 - fr) + ext[lo + 1] * fr
    else:
        ref = t[torch.floor(d + 0.5).long().clamp(max=8)]
    ref = ref * (torch.floor(d + 0.5) <= 8)
    assert torch.allclose(k, ref / torch.sqrt((ref * ref).sum()), rtol=1e-12, atol=1e-14)
