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

from napari_gencal.core.phases import PhaseMap
from napari_gencal.core.tppf import (
    TPPFResult,
    choose_r_max,
    directional_tppf,
    lattice_tppf,
    pair_indices,
    radial_tppf,
    tppf_loss,
    tppf_of_labels,
)
from tests.conftest import shared_data


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
    assert torch.autograd.gradcheck(lambda t: radial_tppf(t, 2, dim=2), (p,), fast_mode=True)
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


def test_general_path_equals_brute_force_and_sum_path():
    # Two of three phases do not sum to one: the general path (k FFTs) runs; with gradients on, the
    # general path runs even for one-hot input. Both must equal the brute force / the fast path.
    rng = np.random.default_rng(10)
    x = _one_hot_np(rng.integers(0, 3, (9, 11)), 3)
    got = lattice_tppf(torch.tensor(x[:2]), 4)[0].numpy()
    np.testing.assert_allclose(got, _brute_lattice(x[:2], 4), atol=1e-12)
    t = torch.tensor(x, requires_grad=True)
    slow = radial_tppf(t, 5)
    fast = radial_tppf(t.detach(), 5)
    np.testing.assert_allclose(slow.detach().numpy(), fast.numpy(), atol=1e-12)


# -------------------------------------------------------------------------------------------------
# independent references: PoreSpy and a thresholded Gaussian random field
# -------------------------------------------------------------------------------------------------


def test_agrees_with_porespy_binning_on_real_data():
    # PoreSpy 3.x (two_point_correlation) zero-pads to twice the size and divides by the overlap
    # count: per lag it is the same minus-sampling estimator as ours. It then averages lags in
    # radial bins [b, b + w) (w = ceil(min(shape)/2 / bins)) and reports that mean as
    # `probability_scaled`, while our radial curve is a Gaussian kernel regression at integer r.
    # So we reproduce PoreSpy's binning from our lattice estimate: equal to float64 round-off.
    porespy = pytest.importorskip("porespy")
    lab = np.load(shared_data("composite_resized.npy"))
    phase = lab == np.unique(lab)[0]
    ps = porespy.metrics.two_point_correlation(phase, bins=100)
    edges = np.asarray(ps.bin_edges)
    L = 40
    lat = lattice_tppf(torch.tensor(phase[None], dtype=torch.float64), L)[0, 0, 0].numpy()
    hy, hx = np.mgrid[-L : L + 1, -L : L + 1]
    dist = np.hypot(hy, hx)
    n_bins = int(np.searchsorted(edges, L, side="right")) - 1  # bins that lie inside |h| < L
    assert n_bins >= 15
    ours = np.array([lat[(dist >= edges[b]) & (dist < edges[b + 1])].mean() for b in range(n_bins)])
    np.testing.assert_allclose(ours, np.asarray(ps.probability_scaled)[:n_bins], atol=1e-10)


def _gaussian_field(rng: np.random.Generator, n: int, ell: float) -> np.ndarray:
    """Periodic GRF with covariance exp(−r²/(2ℓ²)) on an n×n torus (spectral method, numpy)."""
    d = np.minimum(np.arange(n), n - np.arange(n))
    r2 = d[:, None] ** 2 + d[None, :] ** 2
    spec = np.clip(np.fft.rfft2(np.exp(-r2 / (2 * ell**2))).real, 0, None)
    noise = np.fft.rfft2(rng.standard_normal((n, n)))
    return np.fft.irfft2(noise * np.sqrt(spec), s=(n, n))


def _regressed_truth(fun, r_max: int, bw: float = 1.0) -> np.ndarray:
    """The kernel regression applied to a known function of |h| (what the estimator targets)."""
    L = r_max + 3
    hy, hx = np.mgrid[-L : L + 1, -L : L + 1]
    rad = np.hypot(hy, hx).ravel()
    rad = rad[rad <= r_max + 3 * bw + 1e-9]
    vals = fun(rad)
    out = [fun(np.zeros(1))[0]]
    for r in range(1, r_max + 1):
        w = np.exp(-0.5 * ((r - rad) / bw) ** 2)
        out.append((w * vals).sum() / w.sum())
    return np.array(out)


def test_thresholded_gaussian_field_matches_arcsine_law():
    # ξ = 1{X ≥ 0} for a unit GRF with correlation ρ: C_11(r) = 1/4 + arcsin(ρ(r)) / (2π).
    # Three phases by thresholds a < b: at r ≥ 6ℓ (ρ < 1e-7) C_ij = P_i P_j exactly.
    from scipy.stats import norm

    rng = np.random.default_rng(11)
    ell, w, r_max, n_rep = 3.0, 128, 24, 24
    a, b = -0.4, 0.6
    two, three = [], []
    for _ in range(n_rep):
        X = _gaussian_field(rng, 2 * w, ell)[:w, :w]  # a window of the torus: no periodicity used
        two.append(radial_tppf(torch.tensor(_one_hot_np((X >= 0).astype(int), 2)), r_max).numpy())
        lab3 = np.digitize(X, [a, b])
        three.append(radial_tppf(torch.tensor(_one_hot_np(lab3, 3)), r_max).numpy())
    two, three = np.array(two), np.array(three)

    def c11(r):
        return 0.25 + np.arcsin(np.exp(-(r**2) / (2 * ell**2))) / (2 * np.pi)

    truth = _regressed_truth(c11, r_max)
    mean = two[:, 1, 1].mean(0)
    se = two[:, 1, 1].std(0, ddof=1) / math.sqrt(n_rep)
    # 4 standard errors of the replicate mean, per r (plus 1e-12 at r where se is ~0).
    assert np.all(np.abs(mean - truth) <= 4 * se + 1e-12), np.abs(mean - truth) / se
    # Large r, three phases: every pair tends to P_i P_j.
    P = np.diff(np.concatenate([[0.0], norm.cdf([a, b]), [1.0]]))
    far = slice(int(6 * ell), r_max + 1)
    m3 = three[:, :, :, far].mean(0)
    se3 = three[:, :, :, far].std(0, ddof=1) / math.sqrt(n_rep)
    assert np.all(np.abs(m3 - np.outer(P, P)[:, :, None]) <= 4 * se3)


# -------------------------------------------------------------------------------------------------
# r_max rule
# -------------------------------------------------------------------------------------------------


def test_choose_r_max_rule_on_known_curves():
    phi = np.array([0.3, 0.7])
    r = np.arange(101)
    cov = np.outer(phi, phi)[:, :, None] + np.array([[1, -1], [-1, 1]])[:, :, None] * (
        0.21 * np.exp(-r / 5.0)
    )
    # Absolute: 0.21·e^(−r/5) <= 0.01 from r0 = ceil(5·ln 21) = 16 on → ceil(1.5·16) = 24.
    assert choose_r_max(cov, phi, image_shape=(400, 400)) == 24
    # Correlation scale: sqrt(φ(1−φ)) products are all 0.21, so the bound is 0.0021 → r0 = 24 → 36.
    assert choose_r_max(cov, phi, image_shape=(400, 400), scale="correlation") == 36
    # Caps: a quarter of the smallest side, then the absolute cap.
    assert choose_r_max(cov, phi, image_shape=(80, 400)) == 20
    assert choose_r_max(cov, phi, image_shape=(400, 400), cap=10) == 10
    # A curve that never settles inside the range returns the cap.
    flat = cov.copy()
    flat[0, 0, :] += 0.05
    assert choose_r_max(flat, phi, image_shape=(400, 400)) == 100
    with pytest.raises(ValueError, match="image_shape"):
        choose_r_max(cov, phi)


def test_choose_r_max_from_indicators_uses_quarter_side_cap():
    rng = np.random.default_rng(12)
    X = _gaussian_field(rng, 128, 2.0)[:64, :64]
    x = torch.tensor(_one_hot_np((X >= 0).astype(int), 2))
    r = choose_r_max(x)
    assert 1 <= r <= 16
    # Same as the rule applied to the curves computed up to the cap.
    curves = radial_tppf(x, 16).numpy()
    assert r == choose_r_max(curves, x.mean((1, 2)).numpy(), image_shape=(64, 64))


# -------------------------------------------------------------------------------------------------
# front end: tppf_of_labels, TPPFResult
# -------------------------------------------------------------------------------------------------


def test_sections_are_the_average_of_slice_curves():
    rng = np.random.default_rng(13)
    vol = rng.choice(np.array([0, 85, 170], dtype=np.uint8), size=(10, 24, 20))
    res = tppf_of_labels(vol, axis="y", r_max=4, device="cpu")
    assert res.mode == "sections normal to y" and res.n_images == 24
    assert res.directional_axes == ("z", "x")
    want = np.mean(
        [
            radial_tppf(
                torch.tensor(_one_hot_np(np.searchsorted([0, 85, 170], vol[:, i, :]), 3)), 4
            ).numpy()
            for i in range(24)
        ],
        axis=0,
    )
    np.testing.assert_allclose(res.curves, want, atol=1e-6)
    # 3D use of the same volume is the 3D estimator.
    res3 = tppf_of_labels(vol, r_max=3, device="cpu")
    assert res3.mode == "3D" and res3.directional.shape == (3, 3, 3, 4)
    x3 = torch.tensor(_one_hot_np(np.searchsorted([0, 85, 170], vol), 3))
    np.testing.assert_allclose(res3.curves, radial_tppf(x3, 3).numpy(), atol=1e-6)
    np.testing.assert_allclose(res3.directional, directional_tppf(x3, 3).numpy(), atol=1e-6)


def test_result_csv_and_figure(tmp_path):
    rng = np.random.default_rng(14)
    img = rng.choice(np.array([0, 1, 2]), size=(40, 40))
    pm = PhaseMap((0, 1, 2), ("SE", "AM", "pore"))
    res = tppf_of_labels(img, phase_map=pm, r_max=6, device="cpu", voxel_size=0.5)
    assert isinstance(res, TPPFResult)
    path = res.to_csv(tmp_path / "t.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[:8] == [
        "r", "r_phys", "C_SE_SE", "C_SE_AM", "C_SE_pore", "C_AM_AM", "C_AM_pore", "C_pore_pore"
    ]  # fmt: skip
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 1], 0.5 * np.arange(7))
    np.testing.assert_allclose(table[:, 3], res.curves[0, 1], atol=1e-9)
    with pytest.raises(FileExistsError):
        res.to_csv(path)
    res.to_csv(path, overwrite=True)
    fig = res.figure()
    assert type(fig).__name__ == "Figure" and len(fig.axes[0].lines) == 2 * 6


def test_tppf_of_labels_bad_input():
    with pytest.raises(ValueError, match="too small"):
        tppf_of_labels(np.random.default_rng(0).integers(0, 2, (6, 40)), r_max=2, device="cpu")
    with pytest.raises(ValueError, match="image side 32"):
        tppf_of_labels(np.random.default_rng(0).integers(0, 2, (32, 40)), r_max=32, device="cpu")
    with pytest.raises(ValueError, match="phase"):
        tppf_of_labels(np.arange(100 * 100).reshape(100, 100) % 7, device="cpu")


def test_cli_writes_csv_and_plot_and_refuses_overwrite(tmp_path, capsys):
    from napari_gencal.cli import main

    rng = np.random.default_rng(15)
    img = tmp_path / "img.npy"
    np.save(img, rng.choice(np.array([0, 85, 170], dtype=np.uint8), size=(48, 48)))
    out, png = tmp_path / "t.csv", tmp_path / "t.png"
    args = ["tppf", str(img), "--rmax", "5", "--out", str(out), "--plot", str(png)]
    assert main(args + ["--device", "cpu"]) == 0
    assert "r_max = 5" in capsys.readouterr().out
    assert out.read_text().splitlines()[0].startswith("r,C_0_0,C_0_85,C_0_170,C_85_85")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = out.read_bytes()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(args + ["--overwrite", "--rmax", "4", "--quiet"]) == 0
    assert len(out.read_text().splitlines()) == 1 + 5


def test_shape_inference_and_batch_chunking(monkeypatch):
    import napari_gencal.core.tppf._fft as tppf_mod

    rng = np.random.default_rng(16)
    vol = torch.tensor(_one_hot_np(rng.integers(0, 3, (6, 7, 8)), 3))
    # (k, Z, Y, X): phases sum to one over axis 0, so it is one volume, same as (1, k, Z, Y, X).
    np.testing.assert_allclose(radial_tppf(vol, 2).numpy(), radial_tppf(vol[None], 2).numpy())
    batch = torch.tensor(_one_hot_np(rng.integers(0, 3, (5, 12, 13)), 3)).movedim(1, 0)
    whole = radial_tppf(batch, 3).numpy()
    # A tiny memory budget forces one section per FFT chunk: the batch mean must not change.
    monkeypatch.setattr(tppf_mod, "_CHUNK_BYTES", 1)
    np.testing.assert_allclose(radial_tppf(batch, 3).numpy(), whole, atol=1e-12)
    per_section = np.mean([radial_tppf(batch[b], 3).numpy() for b in range(5)], axis=0)
    np.testing.assert_allclose(whole, per_section, atol=1e-12)


def test_scipy_and_torch_fft_backends_agree(monkeypatch):
    import napari_gencal.core.tppf._fft as tppf_mod

    rng = np.random.default_rng(17)
    for shape, r in [((3, 30, 31), 6), ((3, 12, 13, 14), 3)]:
        p = torch.tensor(rng.random(shape), dtype=torch.float32)
        p = p / p.sum(0, keepdim=True)
        monkeypatch.setattr(tppf_mod, "FFT_BACKEND", "auto")
        a = (radial_tppf(p, r), lattice_tppf(p, r), directional_tppf(p, r))
        monkeypatch.setattr(tppf_mod, "FFT_BACKEND", "torch")
        b = (radial_tppf(p, r), lattice_tppf(p, r), directional_tppf(p, r))
        for u, v in zip(a, b, strict=True):
            assert u.dtype == v.dtype == torch.float32
            # float32 FFTs of different libraries: agreement to a few ulps of O(1) sums.
            np.testing.assert_allclose(u.numpy(), v.numpy(), atol=2e-6)


def test_automatic_r_max_gives_the_curves_of_that_r_max():
    # The front end regresses once up to the rule's search limit and keeps the first r_max + 1
    # values; they must equal a direct call with that r_max up to the kernel's 3-bandwidth
    # truncation (the direct call's window ends at r_max + 3) and float32 rounding: 1e-5 in
    # probability units, far below any Monte-Carlo error.
    rng = np.random.default_rng(3)
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal((160, 160)), 1.5)
    img = np.digitize(f, np.quantile(f, [0.4, 0.7])).astype(np.uint8)
    auto = tppf_of_labels(img, device="cpu")
    fixed = tppf_of_labels(img, r_max=int(auto.r[-1]), device="cpu")
    assert auto.r[-1] < 40  # the rule chose less than the search limit (a quarter of 160)
    np.testing.assert_allclose(auto.curves, fixed.curves, rtol=0, atol=1e-5)
