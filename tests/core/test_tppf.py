"""Tests of the TPPF estimator (method.md §4) against independent truth.

Truth used here: brute-force loops over lags and pixels (no FFT), the closed form of a thresholded
Gaussian field, PoreSpy, and the exact algebra of indicators.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from napari_gencal.core.tppf import (
    directional_tppf,
    lattice_tppf,
    pair_indices,
    radial_tppf,
    tppf_loss,
)


def _one_hot_np(lab: np.ndarray, k: int) -> np.ndarray:
    return np.moveaxis(np.eye(k)[lab], -1, 0)


def _brute_lattice(x: np.ndarray, L: int) -> np.ndarray:
    """ĉ_ij(h) by explicit loops over h and over every pixel t (no FFT, no vectorisation tricks)."""
    k, sp = x.shape[0], x.shape[1:]
    d = len(sp)
    out = np.zeros((k, k) + (2 * L + 1,) * d)
    for h in itertools.product(range(-L, L + 1), repeat=d):
        acc = np.zeros((k, k))
        n = 0
        for t in itertools.product(*[range(w) for w in sp]):
            u = tuple(a + b for a, b in zip(t, h, strict=True))
            if all(0 <= u[q] < sp[q] for q in range(d)):
                acc += np.outer(x[(slice(None),) + t], x[(slice(None),) + u])
                n += 1
        out[(slice(None), slice(None)) + tuple(a + L for a in h)] = acc / n
    return out


def _slice_lattice(x: np.ndarray, L: int) -> np.ndarray:
    """ĉ_ij(h) by overlapping slices per lag (direct sums, no FFT); for larger test images."""
    k, sp = x.shape[0], x.shape[1:]
    d = len(sp)
    out = np.zeros((k, k) + (2 * L + 1,) * d)
    for h in itertools.product(range(-L, L + 1), repeat=d):
        a = tuple(slice(max(0, -hk), w - max(0, hk)) for hk, w in zip(h, sp, strict=True))
        b = tuple(slice(max(0, hk), w - max(0, -hk)) for hk, w in zip(h, sp, strict=True))
        xa = x[(slice(None),) + a].reshape(k, -1)
        xb = x[(slice(None),) + b].reshape(k, -1)
        out[(slice(None), slice(None)) + tuple(q + L for q in h)] = xa @ xb.T / xa.shape[1]
    return out


def _brute_radial(lat: np.ndarray, r_max: int, bw: float, orthants: str = "all") -> np.ndarray:
    """Gaussian kernel regression of a lattice estimate, lag by lag; r = 0 from h = 0 alone."""
    k = lat.shape[0]
    d = lat.ndim - 2
    L = (lat.shape[2] - 1) // 2
    reach = r_max + 3 * bw
    curves = np.zeros((k, k, r_max + 1))
    for r in range(r_max + 1):
        num = np.zeros((k, k))
        den = 0.0
        for h in itertools.product(range(-L, L + 1), repeat=d):
            if orthants == "one" and min(h) < 0:
                continue
            rad = math.sqrt(sum(q * q for q in h))
            if rad > reach + 1e-9:
                continue
            w = (1.0 if rad == 0 else 0.0) if r == 0 else math.exp(-0.5 * ((r - rad) / bw) ** 2)
            num += w * lat[(slice(None), slice(None)) + tuple(q + L for q in h)]
            den += w
        curves[:, :, r] = num / den
    return curves


# -------------------------------------------------------------------------------------------------
# exactness against brute force
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, L", [((7, 9), 4), ((5, 4, 6), 3)])
def test_lattice_equals_brute_force_loop(shape, L):
    rng = np.random.default_rng(1)
    x = _one_hot_np(rng.integers(0, 3, shape), 3)
    got = lattice_tppf(torch.tensor(x), L)[0].numpy()
    np.testing.assert_allclose(got, _brute_lattice(x, L), rtol=0, atol=1e-12)


def test_lattice_soft_batched_float32_equals_brute_force():
    rng = np.random.default_rng(2)
    p = rng.random((2, 3, 6, 8))
    p /= p.sum(1, keepdims=True)
    got = lattice_tppf(torch.tensor(p, dtype=torch.float32), 5)
    assert got.shape == (2, 3, 3, 11, 11)
    for b in range(2):
        # float32 FFT of sums of <= 48 products of numbers <= 1: 1e-6 absolute is ~10 ulps.
        np.testing.assert_allclose(got[b].numpy(), _brute_lattice(p[b], 5), atol=1e-6)


def test_radial_equals_brute_force_regression_2d_and_3d():
    rng = np.random.default_rng(3)
    for shape, r_max in [((20, 23), 6), ((9, 10, 11), 3)]:
        x = _one_hot_np(rng.integers(0, 3, shape), 3)
        L = r_max + 3
        want = _brute_radial(_slice_lattice(x, L), r_max, 1.0)
        got = radial_tppf(torch.tensor(x), r_max, 1.0).numpy()
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_no_one_orthant_bias_on_diagonal_stripes():
    # Stripes along one diagonal: correlation along (1, 1) and (1, -1) differ, so an estimator that
    # averages only the first orthant (h_y, h_x >= 0) sees a different radial curve (PoreSpy #966).
    yy, xx = np.mgrid[0:40, 0:40]
    lab = (((yy + xx) // 3) % 2).astype(int)
    x = _one_hot_np(lab, 2)
    r_max = 8
    lat = _slice_lattice(x, r_max + 3)
    all_orth = _brute_radial(lat, r_max, 1.0, "all")
    one_orth = _brute_radial(lat, r_max, 1.0, "one")
    # The test image must discriminate: the one-orthant curve is far off somewhere.
    assert np.abs(one_orth - all_orth).max() > 0.05
    got = radial_tppf(torch.tensor(x), r_max).numpy()
    np.testing.assert_allclose(got, all_orth, atol=1e-12)


def test_directional_equals_axis_lags_of_lattice():
    rng = np.random.default_rng(4)
    x = _one_hot_np(rng.integers(0, 3, (6, 7, 8)), 3)
    lat = _slice_lattice(x, 4)
    got = directional_tppf(torch.tensor(x), 4).numpy()
    assert got.shape == (3, 3, 3, 5)
    c = 4
    for a in range(3):
        for r in range(5):
            plus = [c, c, c]
            minus = [c, c, c]
            plus[a] += r
            minus[a] -= r
            want = 0.5 * (
                lat[(slice(None), slice(None)) + tuple(plus)]
                + lat[(slice(None), slice(None)) + tuple(minus)]
            )
            np.testing.assert_allclose(got[a, :, :, r], want, atol=1e-12)


# -------------------------------------------------------------------------------------------------
# identities
# -------------------------------------------------------------------------------------------------


def test_identities_hard_input():
    rng = np.random.default_rng(5)
    lab = rng.integers(0, 3, (48, 50))
    x = _one_hot_np(lab, 3)
    phi = x.mean(axis=(1, 2))
    c = radial_tppf(torch.tensor(x), 10).numpy()
    # C_ii(0) = φ_i and C_ij(0) = 0 exactly (r = 0 is evaluated from h = 0).
    np.testing.assert_allclose(np.diag(c[:, :, 0]), phi, atol=1e-12)
    assert np.abs(c[:, :, 0] - np.diag(np.diag(c[:, :, 0]))).max() < 1e-12
    # Symmetry.
    np.testing.assert_allclose(c, c.transpose(1, 0, 2), atol=1e-14)
    # Σ_j C_ij(r) is the kernel-weighted mean of φ_i over the sub-windows W∩(W−h) (exact), which
    # differs from φ_i by at most the fraction of W outside the smallest sub-window used.
    L = 13
    sub = np.zeros((3,) + (2 * L + 1,) * 2)
    for hy, hx in itertools.product(range(-L, L + 1), repeat=2):
        a = (slice(max(0, -hy), 48 - max(0, hy)), slice(max(0, -hx), 50 - max(0, hx)))
        sub[:, hy + L, hx + L] = x[(slice(None),) + a].mean(axis=(1, 2))
    sub_lat = np.zeros((3, 3) + sub.shape[1:])
    sub_lat[:, 0] = sub  # put the sub-window means in one column, regress it like a TPPF
    want = _brute_radial(sub_lat, 10, 1.0)[:, 0]
    np.testing.assert_allclose(c.sum(1), want, atol=1e-12)
    bound = 1 - (48 - L) * (50 - L) / (48 * 50)
    assert np.abs(c.sum(1) - phi[:, None]).max() <= bound


def test_soft_input_sum_rule_and_symmetry():
    rng = np.random.default_rng(6)
    p = rng.random((4, 3, 30, 30))
    p /= p.sum(1, keepdims=True)
    c = radial_tppf(torch.tensor(p), 8).numpy()
    np.testing.assert_allclose(c, c.transpose(1, 0, 2), atol=1e-14)
    # Σ_ij C_ij(r) = 1 exactly for indicators that sum to one (Σ_j ξ_j ≡ 1 at every point).
    np.testing.assert_allclose(c.sum((0, 1)), 1.0, atol=1e-12)


# -------------------------------------------------------------------------------------------------
# differentiability and the loss
# -------------------------------------------------------------------------------------------------


def test_gradcheck_radial_and_lattice():
    rng = np.random.default_rng(7)
    p = torch.tensor(rng.random((2, 2, 5, 6)) * 0.8 + 0.1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: radial_tppf(t, 2, dim=2), (p,))
    assert torch.autograd.gradcheck(lambda t: lattice_tppf(t, 2, dim=2), (p,), fast_mode=True)
    q = torch.tensor(
        rng.random((1, 2, 3, 4, 4)) * 0.8 + 0.1, dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(lambda t: radial_tppf(t, 1), (q,), fast_mode=True)


def test_tppf_loss_is_mean_over_upper_pairs():
    rng = np.random.default_rng(8)
    a = rng.random((3, 3, 5))
    b = rng.random((3, 3, 5))
    ii, jj = pair_indices(3)
    want = np.mean(
        [(a[i, j, r] - b[i, j, r]) ** 2 for i, j in zip(ii, jj, strict=True) for r in range(5)]
    )
    got = tppf_loss(torch.tensor(a, requires_grad=True), b)
    assert got.item() == pytest.approx(want, rel=1e-12)
    got.backward()
    with pytest.raises(ValueError, match="same shape"):
        tppf_loss(torch.tensor(a), b[:, :, :4])


# -------------------------------------------------------------------------------------------------
# bad input
# -------------------------------------------------------------------------------------------------


def test_bad_input_messages():
    x = torch.tensor(_one_hot_np(np.random.default_rng(9).integers(0, 3, (16, 16)), 3))
    with pytest.raises(ValueError, match="image side 16"):
        radial_tppf(x, 16)
    with pytest.raises(ValueError, match="NaN"):
        y = x.clone()
        y[0, 0, 0] = float("nan")
        radial_tppf(y, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        radial_tppf(x * 85, 3)
    with pytest.raises(ValueError, match="too small"):
        radial_tppf(torch.ones(2, 1, 8), 0)
    with pytest.raises(ValueError, match="pass dim=2 or dim=3"):
        radial_tppf(torch.full((2, 2, 8, 8), 0.3), 2)
    with pytest.raises(ValueError, match="bandwidth"):
        radial_tppf(x, 3, bandwidth=0)
