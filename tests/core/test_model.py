"""The model container (validation, JSON), thresholds from fractions, and the torch module."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from napari_gencal.core.model import (
    KERNEL_NAMES,
    ExcursionModel,
    ExcursionModule,
    sample_marginals,
    thresholds_for_fractions,
)
from napari_gencal.core.phases import PhaseMap


def _random_model(kind="high", seed=0):
    rng = np.random.default_rng(seed)
    m = ExcursionModel.default(kind=kind, m=6, n_phases=3, fractions=(0.42, 0.51, 0.07))
    if kind == "high":
        kernels = {n: rng.standard_normal(7).tolist() for n in KERNEL_NAMES}
    else:
        kernels = {n: dict(m.kernels[n], w=float(rng.uniform())) for n in KERNEL_NAMES}
    return m.copy(
        kernels=kernels,
        sigma1=float(rng.uniform(0.1, 3)),
        sigma2=math.pi,
        a=1 / 3,
        phase_map=PhaseMap((0, 128, 255), ("SE", "AM", "pore")),
        voxel_size=(0.1, 0.1 / 3, 0.7),
        unit="um",
        anisotropy=0.94,
        length_scale=1.7,
        metadata={"source": "test", "sha256": "abc"},
    )


@pytest.mark.parametrize("kind", ["high", "low"])
def test_json_round_trip_is_lossless(tmp_path, kind):
    model = _random_model(kind)
    p = model.save(tmp_path / "m.json")
    back = ExcursionModel.load(p)
    assert back.to_dict() == model.to_dict()  # floats compared exactly
    assert back.phase_map == model.phase_map
    d = json.loads(p.read_text())
    assert d["format"] == "napari-gencal-model" and d["format_version"] == 4
    assert d["length_scale"] == 1.7
    with pytest.raises(FileExistsError):
        model.save(p)
    model.save(p, overwrite=True)


def test_version_1_files_read_with_unit_length_scale(tmp_path):
    d = _random_model("high").to_dict()
    d["format_version"] = 1
    del d["length_scale"]
    p = tmp_path / "v1.json"
    p.write_text(json.dumps(d))
    back = ExcursionModel.load(p)
    assert back.length_scale == 1.0
    assert back.scale == (0.94, 1.0, 1.0)


def test_length_scale_stretches_every_axis():
    m = _random_model("high").copy(length_scale=2.0, anisotropy=1.5)
    assert m.scale == (3.0, 2.0, 2.0)
    k = m.kernel3d("X1")
    assert k.shape == (2 * math.ceil(m.m * 3.0) + 1, 2 * 2 * m.m + 1, 2 * 2 * m.m + 1)
    with pytest.raises(ValueError, match="length_scale"):
        m.copy(length_scale=0.0).validate()


def test_load_rejects_foreign_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a napari-gencal model"):
        ExcursionModel.load(p)
    p.write_text("not json")
    with pytest.raises(ValueError, match="JSON"):
        ExcursionModel.load(p)
    d = _random_model().to_dict()
    del d["sigma1"]
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="lacks"):
        ExcursionModel.load(p)
    d = _random_model().to_dict()
    d["format_version"] = 99
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="version"):
        ExcursionModel.load(p)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"sigma1": -1.0}, "sigma1 must be > 0"),
        ({"sigma2": float("nan")}, "finite"),
        ({"a": 1.5}, r"a must lie in \[0, 1\]"),
        ({"a": -0.1}, r"a must lie in \[0, 1\]"),
        ({"n_chi2": 0}, "n_chi2"),
        ({"n_chi2": 7}, "n_chi2"),
        ({"lambda1": float("inf")}, "lambda1"),
        ({"nu": 0.0}, "nu"),
        ({"anisotropy": 0.0}, "anisotropy"),
        ({"n_phases": 4}, "n_phases"),
        ({"m": 0}, "m"),
        ({"kind": "mid"}, "kind"),
        ({"phase_map": PhaseMap((1, 2))}, "phase_map"),
        ({"voxel_size": (1.0, -1.0, 1.0)}, "voxel_size"),
    ],
)
def test_validate_names_the_problem(change, match):
    base = ExcursionModel.default(m=4)
    with pytest.raises(ValueError, match=match):
        base.copy(**change).validate()


def test_validate_kernels():
    base = ExcursionModel.default(m=4)
    k = dict(base.kernels)
    k["X1"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="m \\+ 1 = 5"):
        base.copy(kernels=k).validate()
    k["X1"] = [0.0] * 5
    with pytest.raises(ValueError, match="all zeros"):
        base.copy(kernels=k).validate()
    k["X1"] = [1.0, float("nan"), 0, 0, 0]
    with pytest.raises(ValueError, match="NaN"):
        base.copy(kernels=k).validate()
    del k["X1"]
    with pytest.raises(ValueError, match="missing"):
        base.copy(kernels=k).validate()
    low = ExcursionModel.default(kind="low", m=4)
    k = dict(low.kernels)
    k["eps_X"] = dict(k["eps_X"], w=2.0)
    with pytest.raises(ValueError, match="outside its bounds"):
        low.copy(kernels=k).validate()


def test_thresholds_reproduce_fractions_independently():
    model = ExcursionModel.default(m=4, n_chi2=2).copy(a=0.7, sigma1=0.5, sigma2=2.0)
    target = (0.42, 0.51, 0.07)
    fitted = thresholds_for_fractions(model, target, n_samples=400_000, seed=1)
    # independent check: fresh samples (other seed) of the scalar marginals
    z1, z2 = sample_marginals(fitted, 400_000, seed=99)
    p1 = np.mean(z1 >= fitted.lambda1)
    p2 = np.mean((z1 < fitted.lambda1) & (z2 >= fitted.lambda2))
    # both the fit and the check carry binomial error sqrt(φ(1−φ)/n); 4 combined SE
    for p, f in ((p1, 0.42), (p2, 0.51)):
        se = math.sqrt(2 * f * (1 - f) / 400_000)
        assert abs(p - f) < 4 * se
    # χ²_n + σN marginal: λ1 also checked against SciPy (quadrature over the normal part)
    from scipy import integrate, stats

    def sf(lam):
        f = lambda x: stats.chi2(2).sf(lam - 0.5 * x) * stats.norm.pdf(x)  # noqa: E731
        return integrate.quad(f, -10, 10)[0]

    assert abs(sf(fitted.lambda1) - 0.42) < 4 * math.sqrt(0.42 * 0.58 / 400_000)
    with pytest.raises(ValueError, match="sum to 1"):
        thresholds_for_fractions(model, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="strictly between"):
        thresholds_for_fractions(model, (0.0, 0.5, 0.5))


def test_two_phase_default_fraction():
    model = ExcursionModel.default(m=4, n_phases=2, fractions=(0.3, 0.7))
    z1, _ = sample_marginals(model, 200_000, seed=3)
    assert abs(np.mean(z1 >= model.lambda1) - 0.3) < 4 * math.sqrt(2 * 0.21 / 200_000)


@pytest.mark.parametrize("kind", ["high", "low"])
def test_module_round_trip_and_gradients(kind):
    model = _random_model(kind)
    mod = ExcursionModule.from_model(model, dtype=torch.float64)
    back = mod.to_model()
    for nm in ("sigma1", "sigma2", "a", "lambda1", "lambda2"):
        assert abs(getattr(back, nm) - getattr(model, nm)) < 1e-9
    for n in KERNEL_NAMES:
        if kind == "high":
            np.testing.assert_allclose(back.kernels[n], model.kernels[n], rtol=1e-12)
        else:
            for p, v in model.kernels[n].items():
                assert abs(back.kernels[n][p] - v) < 1e-6 * max(1.0, abs(v))
    assert back.phase_map == model.phase_map and back.anisotropy == model.anisotropy
    # kernels equal the model's own, and depend differentiably on every kernel parameter
    ks = mod.kernels()
    for n in KERNEL_NAMES:
        torch.testing.assert_close(ks[n], model.kernel3d(n), rtol=1e-6, atol=1e-9)
    loss = sum(
        (k * torch.linspace(0, 1, k.numel(), dtype=k.dtype).view_as(k)).sum() for k in ks.values()
    )
    loss.backward()
    params = mod.theta if kind == "high" else mod.cov
    for n in KERNEL_NAMES:
        assert params[n].grad is not None and params[n].grad.abs().sum() > 0


def test_phases_soft_and_hard():
    model = ExcursionModel.default(m=3)
    mod = ExcursionModule.from_model(model, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    Z1 = torch.randn(2, 30, 30, generator=g, dtype=torch.float64) * 3 + model.lambda1
    Z2 = torch.randn(2, 30, 30, generator=g, dtype=torch.float64) * 3 + model.lambda2
    hard = mod.phases(Z1, Z2, soft=False)
    assert hard.shape == (2, 3, 30, 30)
    torch.testing.assert_close(hard.sum(1), torch.ones(2, 30, 30, dtype=torch.float64))
    # hard phases by explicit rule
    in1 = Z1 >= model.lambda1
    torch.testing.assert_close(hard[:, 0], in1.double())
    torch.testing.assert_close(hard[:, 1], ((~in1) & (Z2 >= model.lambda2)).double())
    soft = mod.phases(Z1, Z2, soft=True, nu=1e4)
    far = ((Z1 - model.lambda1).abs() > 0.01) & ((Z2 - model.lambda2).abs() > 0.01)
    torch.testing.assert_close(
        soft.movedim(1, -1)[far], hard.movedim(1, -1)[far], atol=1e-6, rtol=0
    )
    soft = mod.phases(Z1, Z2, soft=True)
    torch.testing.assert_close(soft.sum(1), torch.ones(2, 30, 30, dtype=torch.float64))
    soft[:, 1].mean().backward()
    assert mod.lambda1.grad != 0 and mod.lambda2.grad != 0


def test_kernel_scales_on_every_kernel_equal_the_length_scale():
    from napari_gencal.core.generate import generate

    m = ExcursionModel.default("high", m=3, fractions=[0.4, 0.35, 0.25], width=1.2)
    every = m.copy(kernel_scales={n: 1.5 for n in KERNEL_NAMES})
    overall = m.copy(length_scale=1.5)
    assert every.support_scale == overall.scale == (1.5, 1.5, 1.5)
    a = generate(every, (12, 16, 16), seed=4, device="cpu")
    b = generate(overall, (12, 16, 16), seed=4, device="cpu")
    assert np.array_equal(a, b)
    one = m.copy(kernel_scales={"X1": 2.0})
    assert one.kernel_scale("X1") == (2.0, 2.0, 2.0) and one.kernel_scale("X2") == (1.0,) * 3
    assert ExcursionModel.from_dict(one.to_dict()).kernel_scales == {"X1": 2.0}
    assert not np.array_equal(generate(one, (12, 16, 16), seed=4, device="cpu"),
                              generate(m, (12, 16, 16), seed=4, device="cpu"))  # fmt: skip
    with pytest.raises(ValueError, match="unknown kernel"):
        m.copy(kernel_scales={"X9": 2.0}).validate()


def test_axis_stretch_scales_its_axis_round_trips_and_old_files_read_without_it(tmp_path):
    m = _random_model("high").copy(anisotropy=1.5, anisotropy_axis=0, length_scale=2.0,
                                   axis_stretch=(1.0, 1.0, 0.5))  # fmt: skip
    assert m.kernel_scale("X1") == (3.0, 2.0, 1.0)
    assert m.scale == (3.0, 2.0, 1.0)
    # the kernel's support along x follows the stretch
    k = m.kernel3d("X1")
    assert k.shape[2] < k.shape[1]
    back = ExcursionModel.load(m.save(tmp_path / "s.json"))
    assert back.axis_stretch == (1.0, 1.0, 0.5)
    d = m.to_dict()
    d["format_version"] = 3
    del d["axis_stretch"]
    p = tmp_path / "v3.json"
    p.write_text(json.dumps(d))
    assert ExcursionModel.load(p).axis_stretch == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="axis_stretch"):
        m.copy(axis_stretch=(1.0, 0.0, 1.0)).validate()
