"""Knobs of a calibrated model for virtual materials testing (core/sweep/knobs.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.descriptors import mean_chord_length
from napari_gencal.core.generate import generate_sections
from napari_gencal.core.model import ExcursionModel, thresholds_for_fractions
from napari_gencal.core.phases import PhaseMap, to_indices
from napari_gencal.core.sweep import apply_knobs, get_knob, knob_value, knobs_of

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PM = PhaseMap((0, 85, 170), ("pore", "NMC", "binder"))
FR = [0.45, 0.40, 0.15]


@pytest.fixture(scope="module")
def model() -> ExcursionModel:
    m = ExcursionModel.default("high", m=6, fractions=FR, width=1.8, phase_map=PM)
    return thresholds_for_fractions(m.copy(a=0.6), FR)


def fractions(m: ExcursionModel, n: int = 6, size: int = 160, seed: int = 1) -> np.ndarray:
    idx = to_indices(generate_sections(m, n, size, seed=seed, device="cpu"), PM)
    return np.array([np.mean(idx == i) for i in range(3)])


def test_knob_names_and_bad_input(model):
    names = set(knobs_of(model))
    assert {"vf:0", "vf:85", "vf:170", "length_scale", "anisotropy", "sigma1", "sigma2",
            "a"} <= names  # fmt: skip
    assert {f"length_scale:{k}" for k in ("X1", "X2", "eps_X", "eps_Y", "eps_Z")} <= names
    with pytest.raises(ValueError, match="unknown knob 'porosity'.*vf:0, vf:85"):
        apply_knobs(model, {"porosity": 0.3})
    with pytest.raises(ValueError, match=r"outside its domain \[0.01, 0.99\]"):
        apply_knobs(model, {"vf:0": 1.5})
    with pytest.raises(ValueError, match="needs a number"):
        apply_knobs(model, {"a": "high"})
    with pytest.raises(ValueError, match="leave no room"):
        apply_knobs(model, {"vf:0": 0.6, "vf:85": 0.5})
    assert knob_value(model, "length_scale") == 1.0
    assert knob_value(model, "vf:85") == pytest.approx(0.40, abs=0.003)
    assert "one-point law" in get_knob(model, "vf:0").doc


def test_a_volume_fraction_knob_gives_that_fraction(model):
    changed = apply_knobs(model, {"vf:85": 0.30})
    # one-point law: exact up to the threshold Monte Carlo (~0.001)
    assert knob_value(changed, "vf:85") == pytest.approx(0.30, abs=0.003)
    # the others keep their ratio 0.45 : 0.15
    f = [knob_value(changed, f"vf:{v}") for v in (0, 170)]
    assert f[0] / f[1] == pytest.approx(3.0, rel=0.03)
    # and realizations have it (6 sections of 160²: sd ≈ 0.01)
    got = fractions(changed)
    assert got[1] == pytest.approx(0.30, abs=0.03)
    both = apply_knobs(model, {"vf:0": 0.5, "vf:170": 0.2})
    assert knob_value(both, "vf:85") == pytest.approx(0.30, abs=0.004)
    # shape knobs keep the fractions (thresholds re-solved)
    rough = apply_knobs(model, {"sigma1": 3.0, "a": 0.1})
    assert rough.sigma1 == 3.0 and rough.a == pytest.approx(0.1)
    assert knob_value(rough, "vf:85") == pytest.approx(0.40, abs=0.003)


def test_a_length_knob_scales_chords_by_its_factor(model):
    base = to_indices(generate_sections(model, 6, 160, seed=2, device="cpu"), PM)
    big = to_indices(
        generate_sections(apply_knobs(model, {"length_scale": 2.0}), 6, 320, seed=3,
                          device="cpu"), PM,
    )  # fmt: skip
    for i in range(3):
        a = np.mean([mean_chord_length(base, i, axis=ax, sections=True) for ax in "yx"])
        b = np.mean([mean_chord_length(big, i, axis=ax, sections=True) for ax in "yx"])
        assert b / a == pytest.approx(2.0, rel=0.08)
    # one field only: the χ² blobs of phases 1 and 2 coarser changes the phases they shape
    blobs = apply_knobs(model, {"length_scale:eps_Z": 2.0})
    assert blobs.kernel_scales == {"eps_Z": 2.0} and blobs.length_scale == model.length_scale


def test_anisotropy_knob_stretches_along_the_axis(model):
    from napari_gencal.core.generate import generate

    vol = to_indices(generate(apply_knobs(model, {"anisotropy": 2.0}), (64, 48, 48), seed=1,
                              device="cpu"), PM)  # fmt: skip
    z = mean_chord_length(vol, 0, axis="z")
    xy = 0.5 * (mean_chord_length(vol, 0, axis="y") + mean_chord_length(vol, 0, axis="x"))
    assert z / xy == pytest.approx(2.0, rel=0.2)


def test_stretch_knob_stretches_the_sections_along_its_axis(model):
    st = apply_knobs(model, {"stretch:x": 1.8})
    assert st.axis_stretch == (1.0, 1.0, 1.8) and knob_value(st, "stretch:x") == 1.8
    assert knob_value(st, "stretch:y") == 1.0
    sec = to_indices(generate_sections(st, 6, 192, seed=4, device="cpu"), PM)
    x = mean_chord_length(sec, 0, axis="x", sections=True)
    y = mean_chord_length(sec, 0, axis="y", sections=True)
    assert x / y == pytest.approx(1.8, rel=0.12)


def test_truncation_and_per_field_anisotropy_knobs(model):
    from napari_gencal.core.model import model_fractions

    names = knobs_of(model)
    assert {"tilt", "coating", "anisotropy:X1", "anisotropy:eps_Z"} <= set(names)
    tilted = apply_knobs(model, {"tilt": 0.8})
    assert tilted.tilt == 0.8
    # the truncation changes where phases are, not how much of each (fractions re-solved)
    np.testing.assert_allclose(model_fractions(tilted, 400_000, seed=3), FR, atol=0.004)
    np.testing.assert_allclose(fractions(tilted), FR, atol=0.03)
    coated = apply_knobs(model, {"coating": 1.0, "vf:85": 0.3})
    np.testing.assert_allclose(model_fractions(coated, 400_000, seed=3)[1], 0.3, atol=0.004)
    one = apply_knobs(model, {"anisotropy:X1": 2.0})
    assert one.field_anisotropy("X1") == 2.0 and one.field_anisotropy("X2") == 1.0
    assert one.kernel3d("X1").shape[0] > one.kernel3d("X2").shape[0]
    both = apply_knobs(one, {"anisotropy": 2.0})  # the shared b scales the per-field ones
    assert both.field_anisotropy("X1") == 4.0 and both.field_anisotropy("X2") == 2.0
    assert knob_value(both, "anisotropy:X1") == 4.0
