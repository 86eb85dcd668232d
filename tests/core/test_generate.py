"""Generation: reproducibility, chunk exactness, fractions, sections vs slices, anisotropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_gencal.core.fields import kernel_radius
from napari_gencal.core.generate import (
    generate,
    generate_block,
    generate_sections,
    sample_sections,
)
from napari_gencal.core.model import ExcursionModel, ExcursionModule, sample_marginals
from napari_gencal.core.phases import PhaseMap, one_hot


@pytest.fixture(scope="module")
def model():
    return ExcursionModel.default(m=4, fractions=(0.42, 0.51, 0.07), width=1.5).copy(
        a=0.6, sigma1=0.8, sigma2=1.2
    )


def test_same_seed_same_output_and_labels(model):
    a = generate(model, (20, 24, 28), seed=3, device="cpu")
    b = generate(model, (20, 24, 28), seed=3, device="cpu")
    c = generate(model, (20, 24, 28), seed=4, device="cpu")
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {1, 2, 3}
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.2
    pm = PhaseMap((0, 500, 1000))
    lab = generate(model.copy(phase_map=pm), (20, 24, 28), seed=3, device="cpu")
    assert lab.dtype == np.uint16
    np.testing.assert_array_equal(lab, np.array([0, 500, 1000])[a - 1])


@pytest.mark.parametrize("kind, b", [("high", 1.5), ("low", 0.7)])
def test_chunked_equals_whole(model, kind, b):
    m = model if kind == "high" else ExcursionModel.default(kind="low", m=4)
    m = m.copy(anisotropy=b)
    whole = generate(m, (23, 30, 27), seed=11, device="cpu")
    chunked = generate(m, (23, 30, 27), seed=11, device="cpu", chunks=(12, 16, 20))
    np.testing.assert_array_equal(chunked, whole)
    # any block, computed alone from its global origin, equals that part of the whole
    blk = generate_block(m, (5, 9, 13), (10, 11, 12), seed=11, device="cpu")
    np.testing.assert_array_equal(blk + 1, whole[5:15, 9:20, 13:25])


def test_2d_is_the_z0_section_of_3d_and_chunks_in_2d(model):
    vol = generate(model, (6, 33, 35), seed=2, device="cpu")
    img = generate(model, (33, 35), seed=2, device="cpu")
    np.testing.assert_array_equal(img, vol[0])
    np.testing.assert_array_equal(generate(model, (33, 35), seed=2, device="cpu", chunks=16), img)


def test_periodic_generation(model):
    v = generate(model, (12, 14, 16), seed=0, device="cpu", periodic=True)
    assert v.shape == (12, 14, 16)
    img = generate(model, (20, 22), seed=0, device="cpu", periodic=True)
    assert img.shape == (20, 22)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        generate(model, (8, 14, 16), periodic=True, device="cpu")
    with pytest.raises(ValueError, match="periodic"):
        generate(model, (12, 14, 16), periodic=True, chunks=8, device="cpu")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (10,)}, "shape"),
        ({"shape": (0, 10, 10)}, "shape"),
        ({"shape": (10, 10, 10), "seed": -1}, "seed"),
        ({"shape": (10, 10, 10), "precision": "half"}, "precision"),
        ({"shape": (10, 10, 10), "chunks": (0, 5, 5)}, "chunks"),
    ],
)
def test_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(model, device="cpu", **kwargs)
    with pytest.raises(ValueError, match="sigma1"):
        generate(model.copy(sigma1=-1.0), (5, 5, 5), device="cpu")


def test_volume_fractions_match_scalar_marginals(model):
    """Fractions of generated volumes vs P(Z1 ≥ λ1), P(Z1 < λ1, Z2 ≥ λ2) from scalar samples."""
    z1, z2 = sample_marginals(model, 1_000_000, seed=123)
    p = np.array(
        [
            np.mean(z1 >= model.lambda1),
            np.mean((z1 < model.lambda1) & (z2 >= model.lambda2)),
        ]
    )
    p = np.append(p, 1 - p.sum())
    R, n = 8, 32
    fr = (
        np.array(
            [
                np.bincount(generate(model, (n, n, n), seed=s, device="cpu").ravel(), minlength=4)[
                    1:
                ]
                for s in range(R)
            ]  # fmt: skip
        )
        / n**3
    )
    mean = fr.mean(0)
    # Voxels are correlated: the SE comes from the spread between independent volumes (8 seeds),
    # plus the binomial SE of the 1e6 scalar samples; 4 combined SE.
    se = np.sqrt(fr.var(0, ddof=1) / R + p * (1 - p) / 1e6)
    assert np.all(np.abs(mean - p) < 4 * se), (mean, p, se)


def test_sections_have_the_law_of_slices_of_3d_realizations(model):
    """TPPFs of z = 0 slices of 3D realizations equal those of directly simulated sections."""
    from napari_gencal.core.tppf import radial_tppf

    m = model.copy(anisotropy=1.6)  # anisotropy: the section must still see only the plane
    w, R, r_max, G = 40, 32, 8, 8
    # One volume; slices 2·r_z + 1 apart share no noise, so they are independent z = 0 sections.
    gap = 2 * kernel_radius(m.m, m.scale)[0] + 1
    vol = generate(m, (gap * (R - 1) + 1, w, w), seed=0, device="cpu")
    slices = vol[::gap] - 1
    sect = generate_sections(m, R, w, seed=0, device="cpu") - 1

    def curves(idx):
        # batch-mean curves of G groups of R/G images: independent replicates for the SE
        groups = idx.reshape(G, R // G, w, w)
        return np.stack([radial_tppf(one_hot(g, 3, batch=True), r_max).numpy() for g in groups])

    c1, c2 = curves(slices), curves(sect)
    diff = c1.mean(0) - c2.mean(0)
    se = np.sqrt(c1.var(0, ddof=1) / G + c2.var(0, ddof=1) / G)
    # 4 SE per (i, j, r); at r = 0 off-diagonal values are exactly 0 in both (se = 0).
    ok = (np.abs(diff) <= 4 * se) | (np.abs(diff) < 1e-12)
    assert ok.all(), np.argwhere(~ok)


def test_section_field_has_the_3d_planar_covariance(model):
    """One field of the sections (X1, with σ1 huge) has the covariance ρ(0, hy, hx) of the 3D
    kernel — not the covariance of a 2D kernel — for a z-stretched model."""
    from scipy import signal

    from napari_gencal.core.generate import section_fields

    sig = 1e3
    m = model.copy(sigma1=sig, anisotropy=2.0)
    mod = ExcursionModule.from_model(m, dtype=torch.float64)
    B, w = 32, 40
    with torch.no_grad():
        Z1, _ = section_fields(mod, B, w, torch.Generator().manual_seed(4))
    # Z1/σ1 = X1 + X'/σ1; X' (χ²_3, sd √6) shifts the mean by 3/σ1 and adds variance 6/σ1²
    x = (Z1 / sig).numpy() - 3 / sig
    k = m.kernel3d("X1").numpy()
    rho = signal.correlate(k, k, mode="full")
    c = np.array(rho.shape) // 2
    plane = rho[c[0]]
    for hx in (0, 1, 2, 4):
        emp = (x[:, :, : w - hx] * x[:, :, hx:]).mean()
        # 4 SE of a Gaussian-field covariance estimate (bound 2Σρ²/n), + 1e-4 for the χ² part
        tol = 4 * math.sqrt(2 * (plane**2).sum() / (B * w * (w - hx))) + 1e-4
        assert abs(emp - plane[c[1], c[2] + hx]) < tol, (hx, emp, plane[c[1], c[2] + hx])


def _chord_mean(ind: np.ndarray, axis: int) -> float:
    """Mean chord length V_V / P_L along an axis (no border bias): phase voxels per chord entry."""
    x = np.moveaxis(ind, axis, -1).astype(np.int8)
    entries = np.sum((x[..., :-1] == 0) & (x[..., 1:] == 1))
    pairs = x[..., :-1].size
    return float(x.mean() / (entries / pairs))


def test_anisotropy_scales_z_chords():
    """b stretches structures along z: mean z-chords are b times the x/y chords.

    Uses the continuous (linear) kernel: with method.md's shell kernel the fields are rough at the
    voxel scale and lattice chord counts then scale like ~sqrt(b) (docs/decisions/model.md)."""
    b = 2.0
    base = ExcursionModel.default(
        m=8, fractions=(0.42, 0.51, 0.07), width=3.0, interpolation="linear"
    )
    stretched = base.copy(anisotropy=b)
    rel = []
    for s in range(3):
        for mod, out in ((base, None), (stretched, rel)):
            v = generate(mod, (32, 32, 32), seed=s, device="cpu")
            for ph in (1, 2):
                ind = v == ph
                r = _chord_mean(ind, 0) / (0.5 * (_chord_mean(ind, 1) + _chord_mean(ind, 2)))
                if out is None:
                    iso = r
                else:
                    rel.append(r / iso)  # stretched z/xy ratio over the isotropic one, same seed
    rel = np.array(rel)
    se = rel.std(ddof=1) / math.sqrt(rel.size)
    # 4 SE from the spread over 3 seeds × 2 phases, plus 10 % for the lattice: the stretch is exact
    # for the kernel function, but the isotropic model is sampled at 1 voxel per length-scale/3
    # along x and y while the stretched one is sampled twice as finely along z.
    assert abs(rel.mean() - b) < 4 * se + 0.1 * b, (rel, se)


def test_sample_sections_is_differentiable(model):
    mod = ExcursionModule.from_model(model)
    g = torch.Generator().manual_seed(0)
    ind = sample_sections(mod, 4, 32, generator=g, soft=True)
    assert ind.shape == (4, 3, 32, 32)
    torch.testing.assert_close(ind.sum(1), torch.ones(4, 32, 32))
    ind[:, 1].mean().backward()
    for name, p in mod.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert mod.raw_a.grad != 0 and mod.raw_sigma1.grad != 0
    hard = sample_sections(mod, 2, 16, generator=g, soft=False)
    assert set(torch.unique(hard).tolist()) <= {0.0, 1.0}
    two = ExcursionModule.from_model(ExcursionModel.default(m=3, n_phases=2))
    assert sample_sections(two, 2, 16, soft=False).shape == (2, 2, 16, 16)


def test_generate_sections_reproducible(model):
    a = generate_sections(model, 3, 24, seed=5, device="cpu")
    b = generate_sections(model, 3, 24, seed=5, device="cpu")
    assert a.shape == (3, 24, 24) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_cli_generate_writes_labels_and_voxel_size(tmp_path, model, capsys):
    from napari_gencal.cli import main
    from napari_gencal.core.io import read_labels

    pm = PhaseMap((0, 128, 255))
    mpath = model.copy(phase_map=pm, voxel_size=(0.5, 0.25, 0.25), unit="um").save(
        tmp_path / "m.json"
    )
    out = tmp_path / "v.tif"
    args = ["generate", str(mpath), "--shape", "6", "20", "22", "--seed", "3", "--device", "cpu"]
    assert main([*args, "--out", str(out)]) == 0
    img = read_labels(out)
    expected = generate(model.copy(phase_map=pm), (6, 20, 22), seed=3, device="cpu")
    np.testing.assert_array_equal(img.data, expected)
    assert img.voxel_size == pytest.approx((0.5, 0.25, 0.25))
    assert main([*args, "--out", str(out)]) == 2  # refuses to overwrite
    assert "exists" in capsys.readouterr().err
    chunk_args = ["--chunks", "3", "10", "11", "--quiet"]
    assert main([*args, "--out", str(out), "--overwrite", *chunk_args]) == 0
    np.testing.assert_array_equal(read_labels(out).data, expected)
    assert main(["generate", str(mpath), "--shape", "5", "--out", str(tmp_path / "x.tif")]) == 2


def test_fields_equal_an_independent_moving_average(model):
    """generate_fields == the formula of method.md §1–2 evaluated with fields.moving_average
    (SciPy-checked) on the same position-keyed noise: catches offsets, streams and weights."""
    from napari_gencal.core.fields import block_noise, moving_average
    from napari_gencal.core.generate import field_stream, generate_fields

    m = model.copy(anisotropy=1.3)
    shape, origin, seed = (7, 9, 8), (3, -4, 5), 21
    r = kernel_radius(m.m, m.scale)
    n_shape = tuple(s + 2 * q for s, q in zip(shape, r, strict=True))
    n_origin = tuple(o - q for o, q in zip(origin, r, strict=True))

    def fld(name, j=0):
        w = block_noise(seed, n_shape, n_origin, stream=field_stream(name, j))
        return moving_average(w, m.kernel3d(name))

    ca, sa = math.sqrt(1 - m.a), math.sqrt(m.a)
    z1 = m.sigma1 * fld("X1")
    z2 = m.sigma2 * fld("X2")
    for j in range(m.n_chi2):
        ez = fld("eps_Z", j)
        z1 = z1 + (ca * fld("eps_X", j) + sa * ez) ** 2
        z2 = z2 + (ca * fld("eps_Y", j) + sa * ez) ** 2
    Z1, Z2 = generate_fields(m, origin, shape, seed, "cpu")
    torch.testing.assert_close(Z1, z1, rtol=0, atol=1e-10)
    torch.testing.assert_close(Z2, z2, rtol=0, atol=1e-10)


def test_periodic_fields_equal_a_circular_moving_average(model):
    from napari_gencal.core.fields import block_noise, moving_average
    from napari_gencal.core.generate import field_stream, generate_fields

    m = model.copy(n_phases=2, n_chi2=1, a=0.3)
    shape, seed = (11, 12, 13), 2
    Z1, Z2 = generate_fields(m, (0, 0, 0), shape, seed, "cpu", periodic=True)
    assert Z2 is None

    def fld(name):
        w = block_noise(seed, shape, stream=field_stream(name))
        return moving_average(w, m.kernel3d(name), periodic=True)

    z1 = m.sigma1 * fld("X1") + (math.sqrt(0.7) * fld("eps_X") + math.sqrt(0.3) * fld("eps_Z")) ** 2
    torch.testing.assert_close(Z1, z1, rtol=0, atol=1e-10)


def test_low_parametric_sections_are_differentiable():
    low = ExcursionModel.default(kind="low", m=5)
    mod = ExcursionModule.from_model(low)
    ind = sample_sections(mod, 2, 24, generator=torch.Generator().manual_seed(1))
    ind[:, 1].mean().backward()  # phase 2 depends on all five kernels (phase 1 not on X2, eps_Y)
    for n, p in mod.cov.items():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n


def test_auto_chunks_bound_memory_and_equal_whole(model, monkeypatch):
    import napari_gencal.core.generate as gen_mod
    from napari_gencal.core.generate import auto_chunks, working_memory

    shape = (23, 30, 27)
    whole = generate(model, shape, seed=5, device="cpu", chunks=None)
    assert auto_chunks(model, shape) is None  # small: whole
    budget = working_memory(model, shape) // 3
    ch = auto_chunks(model, shape, budget=budget)
    assert ch is not None and working_memory(model, ch) <= budget
    assert all(c <= s for c, s in zip(ch, shape, strict=True))
    # the default "auto" under a small budget cuts the volume and still gives the same voxels
    monkeypatch.setattr(gen_mod, "MEMORY_BUDGET", budget)
    blocks = []
    real_block = gen_mod.generate_block
    monkeypatch.setattr(
        gen_mod, "generate_block", lambda *a, **k: blocks.append(a[2]) or real_block(*a, **k)
    )
    np.testing.assert_array_equal(generate(model, shape, seed=5, device="cpu"), whole)
    assert len(blocks) > 1 and max(working_memory(model, b) for b in blocks) <= budget
    img = generate(model, (33, 35), seed=5, device="cpu", chunks=None)
    blocks.clear()
    monkeypatch.setattr(gen_mod, "MEMORY_BUDGET", working_memory(model, (1, 33, 35)) // 2)
    np.testing.assert_array_equal(generate(model, (33, 35), seed=5, device="cpu"), img)
    assert len(blocks) > 1
    with pytest.raises(ValueError, match="chunks"):
        generate(model, shape, chunks="all")
