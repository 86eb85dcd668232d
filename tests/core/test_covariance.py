"""Low-parametric covariance family: building blocks, kernel of a covariance (Eq. 39), fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal

from napari_gencal.core.covariance import (
    DEFAULT_FAMILY,
    cardinal_sine,
    cauchy,
    fit_family,
    get_family,
    kernel_from_covariance,
    powered_exponential,
    radial_covariance_of_kernel,
)
from napari_gencal.core.fields import radial_kernel


def test_building_blocks_match_closed_forms():
    r = torch.tensor([0.0, 0.5, 1.0, 3.0, 10.0], dtype=torch.float64)
    a, al, be = torch.tensor(2.0), torch.tensor(1.5), torch.tensor(3.0)
    rn = r.numpy()
    np.testing.assert_allclose(cauchy(r, a, al, be).numpy(), (1 + (rn / 2) ** 1.5) ** (-2.0))
    np.testing.assert_allclose(powered_exponential(r, a, al).numpy(), np.exp(-((rn / 2) ** 1.5)))
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(rn == 0, 1.0, np.sin(rn / 2) / (rn / 2))
    np.testing.assert_allclose(cardinal_sine(r, a).numpy(), sinc, atol=1e-15)
    p = torch.tensor(DEFAULT_FAMILY.defaults, dtype=torch.float64)
    assert abs(float(DEFAULT_FAMILY(torch.zeros(1, dtype=torch.float64), p)[0]) - 1.0) < 1e-12
    assert DEFAULT_FAMILY.n_params == 13


def test_unconstrained_round_trip_and_bounds():
    fam = DEFAULT_FAMILY
    rng = np.random.default_rng(0)
    lo, hi = np.array(fam.lower), np.array(fam.upper)
    u = rng.uniform(0.05, 0.95, fam.n_params)
    logm = np.array(fam.log_scale)
    llo, lhi = np.log(np.where(logm, lo, 1.0)), np.log(np.where(logm, hi, 1.0))
    vec = np.where(logm, np.exp(llo + u * (lhi - llo)), lo + u * (hi - lo))
    t = torch.tensor(vec, dtype=torch.float64)
    back = fam.from_unconstrained(fam.to_unconstrained(t))
    torch.testing.assert_close(back, t, rtol=1e-10, atol=1e-12)
    big = fam.from_unconstrained(torch.full((13,), 50.0, dtype=torch.float64))
    assert (big <= torch.tensor(hi) + 1e-9).all()
    with pytest.raises(ValueError, match="outside its bounds"):
        fam.vector(dict(fam.as_dict(fam.defaults), w=1.5))
    with pytest.raises(ValueError, match="missing"):
        fam.vector({"w": 0.5})
    with pytest.raises(ValueError, match="unknown covariance family"):
        get_family("nope")


def test_radial_covariance_of_kernel_matches_brute_force():
    rng = np.random.default_rng(2)
    k = rng.standard_normal((5, 5, 5))
    prof = radial_covariance_of_kernel(k)
    full = signal.correlate(k, k, mode="full")  # all lags, centre = 4
    sums, counts = np.zeros(prof.size), np.zeros(prof.size)
    for idx in np.ndindex(full.shape):
        d = math.sqrt(sum((i - 4) ** 2 for i in idx))
        j = int(round(d))
        if abs(d - j) < 1e-12 and j < prof.size:  # vectors of exactly integer length
            sums[j] += full[idx]
            counts[j] += 1
    np.testing.assert_allclose(prof, sums / counts, atol=1e-10)


def test_kernel_from_covariance_reproduces_the_covariance():
    """Eq. 39: the moving average with k_ϑ has covariance ≈ ρ_ϑ when m covers the covariance."""
    fam = DEFAULT_FAMILY
    params = dict(fam.as_dict(fam.defaults), w=1.0, a1=1e4, a2=3.0, alpha2=2.0, a3=1e5)
    m = 12
    k = kernel_from_covariance(fam, params, m, dim=3)
    assert k.shape == (25, 25, 25)
    assert abs(float((k**2).sum()) - 1.0) < 1e-12
    prof = radial_covariance_of_kernel(k)
    r = np.arange(prof.size, dtype=float)
    with torch.no_grad():
        target = fam(torch.tensor(r), torch.tensor(fam.vector(params))).numpy()
    # Deterministic errors only: the crop at m drops the kernel tail. For a Gaussian covariance
    # exp(−r²/9) the kernel is Gaussian with exp(−2r²/9): mass beyond r = 12 is ~1e-13, so the
    # remaining error is the lattice (the kernel's FFT is sampled), far below 1e-3.
    assert np.max(np.abs(prof[:13] - target[:13])) < 1e-3
    # the anisotropic kernel is the covariance evaluated at (z / b, y, x): support grows along z
    ka = kernel_from_covariance(fam, params, m, dim=3, scale=(1.5, 1.0, 1.0))
    assert ka.shape == (37, 25, 25)


def test_kernel_from_covariance_is_differentiable():
    fam = DEFAULT_FAMILY
    raw = fam.to_unconstrained(torch.tensor(fam.defaults, dtype=torch.float64)).requires_grad_()
    k = kernel_from_covariance(fam, fam.from_unconstrained(raw), 6, dim=3)
    (k[6, 6, 8] + k[6, 7, 7]).backward()
    assert torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0


def test_fit_family_recovers_a_family_curve():
    fam = DEFAULT_FAMILY
    true = dict(fam.as_dict(fam.defaults), w=0.7, a1=5.0, a2=6.0, a4=2.0, a5=3.0)
    r = np.arange(0, 30, dtype=float)
    with torch.no_grad():
        rho = fam(torch.tensor(r), torch.tensor(fam.vector(true))).numpy()
    fit = fit_family(r, rho, fam, n_starts=2)
    with torch.no_grad():
        got = fam(torch.tensor(r), torch.tensor(fam.vector(fit))).numpy()
    # the parameters need not be identifiable; the curve is what must be recovered
    assert np.max(np.abs(got - rho)) < 1e-3


def test_fit_family_to_a_high_parametric_kernel():
    """The paper's workflow: high-parametric kernel → radial covariance → family fit."""
    theta = np.exp(-0.5 * (np.arange(11) / 3.0) ** 2)
    prof = radial_covariance_of_kernel(radial_kernel(theta, dim=3))
    r = np.arange(prof.size, dtype=float)
    fit = fit_family(r, prof, n_starts=3)
    with torch.no_grad():
        got = DEFAULT_FAMILY(torch.tensor(r), torch.tensor(DEFAULT_FAMILY.vector(fit))).numpy()
    # a smooth bump is well inside the family: residual far below the curve's range (1)
    assert np.sqrt(np.mean((got - prof) ** 2)) < 0.02
    with pytest.raises(ValueError, match="matching"):
        fit_family([0, 1], [1.0])


def test_family_gradients_finite_at_zero_distance_for_small_alpha():
    """(r/a)^α with α < 1 has an infinite slope at r = 0; the family must still give finite
    gradients there, or one evaluation at r = 0 turns a whole calibration step into NaN."""
    import torch

    from napari_gencal.core.covariance import cauchy, powered_exponential

    r = torch.arange(0.0, 5.0, dtype=torch.float64)
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    val = (cauchy(r, a, alpha, beta) * powered_exponential(r, a, alpha)).sum()
    val.backward()
    for t in (a, alpha, beta):
        assert torch.isfinite(t.grad).all()
    # Values are unchanged: ρ(0) = 1 and the closed forms at r > 0.
    rr = r[1:]
    expect = (1 + (rr / 2) ** 0.5) ** (-3.0) * torch.exp(-((rr / 2) ** 0.5))
    got = cauchy(rr, a, alpha, beta) * powered_exponential(rr, a, alpha)
    assert torch.allclose(got.detach(), expect)
    at0 = cauchy(r[:1], a, alpha, beta) * powered_exponential(r[:1], a, alpha)
    assert float(at0.detach()) == 1.0
