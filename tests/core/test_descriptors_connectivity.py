"""Euler number density and percolating fraction against independent truth: scikit-image's Euler
number, the Boolean model's analytic Euler density (Miles' formula), hand-made structures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.measure import euler_number as sk_euler

from napari_gencal.core.descriptors.connectivity import (
    euler_density,
    euler_number,
    percolating_fraction,
    soft_euler_density_2d,
    topology_density,
)


@pytest.mark.parametrize("p", [0.3, 0.55, 0.75])
def test_euler_number_equals_scikit_image(p):
    rng = np.random.default_rng(int(p * 100))
    img = (rng.random((40, 52)) < p).astype(np.uint8)
    vol = (rng.random((18, 20, 22)) < p).astype(np.uint8)
    for phase in (0, 1):
        assert euler_number(img, phase) == sk_euler(img == phase, connectivity=1)
        assert euler_number(vol, phase) == sk_euler(vol == phase, connectivity=1)


def _boolean_disks(rng, side, lam, r):
    """A Boolean model of discs (radius r, germs on the lattice) on a side² window, germs beyond
    the border too."""
    from scipy import ndimage as ndi

    pad = int(math.ceil(r)) + 1
    germs = rng.random((side + 2 * pad, side + 2 * pad)) < lam
    img = ndi.distance_transform_edt(~germs) <= r
    return img[pad:-pad, pad:-pad]


def test_euler_density_of_boolean_discs_matches_miles_formula():
    # Miles: chi_A = exp(-lam*A) * (lam - lam^2 * L^2 / (4 pi)) for discs of area A, perimeter L.
    rng = np.random.default_rng(3)
    r, side = 7.0, 384
    lam = 0.5 / (math.pi * r * r)
    area, perimeter = math.pi * r * r, 2 * math.pi * r
    truth = math.exp(-lam * area) * (lam - lam**2 * perimeter**2 / (4 * math.pi))
    est = [euler_density(_boolean_disks(rng, side, lam, r).astype(np.uint8), 1) for _ in range(6)]
    mean, sd = float(np.mean(est)), float(np.std(est, ddof=1) / math.sqrt(len(est)))
    # Monte-Carlo error (3 sd) plus a little for the digital discs.
    assert abs(mean - truth) <= 3 * sd + 0.03 * abs(truth), (mean, truth, sd)


def test_soft_euler_density_equals_hard_estimate_on_hard_maps():
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 3, (4, 30, 34)).astype(np.uint8)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(idx).long(), 3).permute(0, 3, 1, 2)
    soft = soft_euler_density_2d(onehot.double())
    hard = [euler_density(idx, i, sections=True) for i in range(3)]
    np.testing.assert_allclose(soft.numpy(), hard, rtol=1e-12)
    # and it is differentiable in the indicators
    x = onehot.double().clone().requires_grad_(True)
    soft_euler_density_2d(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_topology_density_counts_components_and_holes():
    img = np.zeros((20, 20), np.uint8)
    img[3:10, 3:10] = 1
    img[5:8, 5:8] = 0  # a ring: one component, one hole
    img[13:16, 13:16] = 1  # a second component
    assert topology_density(img[None], 1) * img.size == 3
    assert euler_number(img, 1) == 1  # components - holes


def test_percolating_fraction():
    vol = np.zeros((10, 8, 8), np.uint8)
    vol[:, 2:4, 2:4] = 1  # a channel along z: 40 voxels
    vol[4:6, 6:8, 6:8] = 1  # an isolated blob: 8 voxels
    assert percolating_fraction(vol, 1, "z") == pytest.approx(40 / 48)
    assert percolating_fraction(vol, 1, "x") == 0.0
    assert math.isnan(percolating_fraction(np.zeros((4, 4, 4), np.uint8), 1, 0, n_phases=2))
