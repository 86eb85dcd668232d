"""Truncation rules: the paper's rule is the (0, 0) member of the plurigaussian family; volume
fractions of the one-point law are those of realizations; thresholds hit requested fractions; the
soft rule tends to the hard one; per-field anisotropy stretches only its fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_gencal.core.generate import generate
from napari_gencal.core.model import ExcursionModel, model_fractions, thresholds_for_fractions
from napari_gencal.core.model.truncation import (
    check_truncation,
    fractions_of_samples,
    hard_indices,
    soft_phases,
)
from napari_gencal.core.phases import PhaseMap, to_indices

PM = PhaseMap((1, 2, 3))


def _paper(z1, z2, l1, l2):
    """The paper's rule written out independently (method.md §2)."""
    idx = np.full(z1.shape, 2, np.uint8)
    idx[(z1 < l1) & (z2 >= l2)] = 1
    idx[z1 >= l1] = 0
    return idx


def test_paper_rule_is_the_zero_member_of_the_family():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(3, 2, (2, 10_000))
    np.testing.assert_array_equal(hard_indices(z1, z2, 3.2, 2.5), _paper(z1, z2, 3.2, 2.5))
    np.testing.assert_array_equal(
        hard_indices(torch.as_tensor(z1), torch.as_tensor(z2), 3.2, 2.5).numpy(),
        _paper(z1, z2, 3.2, 2.5),
    )


def test_general_rule_regions():
    # tilt 45°: in the corner above both thresholds, the field that exceeds more wins
    idx = hard_indices(np.array([5.0, 4.0, 2.0, 0.9]), np.array([3.0, 5.0, 5.0, 0.0]),
                       3.0, 2.0, tilt=math.pi / 4, coating=0.5)  # fmt: skip
    # (5,3): Z1 exceeds by 2, Z2 by 1 → 0; (4,5): 1 vs 3 → phase index 1; (2,5): below λ1 → 1;
    # (0.9, 0): below λ1 − δ and λ2 → 2
    assert idx.tolist() == [0, 1, 1, 2]
    # the coating band λ1 − δ ≤ Z1 < λ1 belongs to phase 2 (index 1) even where Z2 < λ2
    assert hard_indices(np.array([2.7]), np.array([0.0]), 3.0, 2.0, 0.0, 0.5).tolist() == [1]


def test_soft_rule_tends_to_the_hard_rule():
    rng = np.random.default_rng(1)
    z1, z2 = (torch.as_tensor(v) for v in rng.normal(3, 2, (2, 20_000)))
    hard = hard_indices(z1, z2, 3.0, 2.5, 0.6, 0.4)
    soft = soft_phases(z1[None], z2[None], 3.0, 2.5, 1e4, torch.tensor(0.6), torch.tensor(0.4))
    assert torch.allclose(soft.sum(1), torch.ones(1, 20_000, dtype=soft.dtype))
    assert (soft >= -1e-12).all()
    assert (soft[0].argmax(0) == hard.long()).float().mean() > 0.999


def test_fractions_of_realizations_match_the_one_point_law():
    model = ExcursionModel.default(m=4, fractions=(0.3, 0.3, 0.4), phase_map=PM, width=1.5)
    model = model.copy(tilt=0.7, coating=0.3)
    want = (0.25, 0.35, 0.40)
    fitted = thresholds_for_fractions(model, want, n_samples=400_000)
    law = model_fractions(fitted, n_samples=400_000, seed=5)  # other samples than the fit's
    np.testing.assert_allclose(law, want, atol=0.004)
    vol = to_indices(generate(fitted, (48, 64, 64), seed=2, device="cpu"), PM)
    got = np.bincount(vol.ravel(), minlength=3) / vol.size
    # one 48·64² volume with correlation length ~2 px: a few thousand independent cells
    np.testing.assert_allclose(got, want, atol=0.03)


def test_checks_and_old_files():
    with pytest.raises(ValueError, match="tilt"):
        check_truncation(3, 2.0, 0.0)
    with pytest.raises(ValueError, match="coating"):
        check_truncation(3, 0.0, -1.0)
    with pytest.raises(ValueError, match="two-phase"):
        check_truncation(2, 0.1, 0.0)
    model = ExcursionModel.default(m=4, fractions=(0.3, 0.3, 0.4), phase_map=PM)
    d = model.to_dict()
    d["format_version"] = 2
    for key in ("tilt", "coating", "anisotropy_fields"):
        d.pop(key)
    old = ExcursionModel.from_dict(d)  # a version-2 file: the paper's rule, one shared b
    assert old.tilt == 0.0 and old.coating == 0.0 and old.anisotropy_fields == {}
    z1, z2 = np.random.default_rng(3).normal(3, 2, (2, 1000))
    assert np.allclose(fractions_of_samples(z1, z2, 3, 2), np.bincount(_paper(z1, z2, 3, 2),
                       minlength=3) / 1000)  # fmt: skip


def test_per_field_anisotropy_stretches_only_its_fields():
    model = ExcursionModel.default(m=5, fractions=(0.3, 0.3, 0.4), phase_map=PM, anisotropy=1.5)
    model = model.copy(anisotropy_fields={"X1": 0.5})
    assert model.kernel3d("X1").shape[0] == 2 * math.ceil(5 * 0.5) + 1
    assert model.kernel3d("X2").shape[0] == 2 * math.ceil(5 * 1.5) + 1
    assert model.kernel3d("X1").shape[1:] == model.kernel3d("X2").shape[1:] == (11, 11)
    assert model.per_field_anisotropy
    back = ExcursionModel.from_dict(model.to_dict())
    assert back.anisotropy_fields == {"X1": 0.5}
    with pytest.raises(ValueError, match="unknown field"):
        model.copy(anisotropy_fields={"X9": 1.0}).validate()
