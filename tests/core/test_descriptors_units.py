"""Descriptors in physical units on non-cubic voxels (FIB-SEM stacks): analytic balls, the
full electrode stack as the truth for every second slice, TauFactor's anisotropic solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile

from napari_gencal.core.descriptors import describe, specific_surface_area
from napari_gencal.core.descriptors.surface import crofton_directions, crofton_weights
from napari_gencal.core.phases import PhaseMap, to_indices
from tests.conftest import shared_data


def test_crofton_weights_reduce_to_the_cubic_ones_and_sum_to_one():
    for dim in (2, 3):
        _, w0 = crofton_directions(dim)
        _, w, lengths = crofton_weights(dim, (1.0,) * dim)
        np.testing.assert_allclose(w, w0, atol=1e-12)
        _, w, lengths = crofton_weights(dim, (2.0,) + (1.0,) * (dim - 1))
        assert w.sum() == pytest.approx(1.0) and lengths[0] == pytest.approx(1.0)


def _ball(spacing, radius, shape_um):
    """A ball of ``radius`` µm centred in a window of ``shape_um``, sampled on ``spacing``."""
    axes = [(np.arange(int(round(L / s))) + 0.5) * s - L / 2
            for L, s in zip(shape_um, spacing, strict=True)]  # fmt: skip
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return (z**2 + y**2 + x**2 < radius**2).astype(np.uint8)


@pytest.mark.parametrize("spacing", [(1.0, 0.5, 0.5), (0.5, 0.5, 0.5)])
def test_ball_surface_and_chords_in_micrometres_on_any_voxels(spacing):
    r, window = 10.0, (30.0, 30.0, 30.0)
    ball = _ball(spacing, r, window)
    sv = specific_surface_area(ball, 2, spacing)[1]
    truth = 4 * math.pi * r**2 / math.prod(window)
    # the digitised ball's Crofton estimate is +7 % on 1 µm cubes, +4 % on 0.5 µm cubes: the
    # non-cubic grid must be no worse than cubes of its coarsest spacing
    coarse = max(spacing)
    cubes = specific_surface_area(_ball((coarse,) * 3, r, window), 2, coarse)[1]
    assert abs(sv / truth - 1) <= abs(cubes / truth - 1) + 1e-9, (sv, cubes, truth)
    assert sv == pytest.approx(truth, rel=0.06), (sv, truth)
    d = describe(ball, PhaseMap((0, 1)), voxel_size=spacing, unit="um",
                 include=("volume_fraction", "mean_chord_length"))  # fmt: skip
    chords = d["phases"]["1"]["mean_chord_length"]
    for direction in "zyx":  # mean chord of a ball along any line direction: 4r/3
        assert chords[direction] == pytest.approx(4 * r / 3, rel=0.04)
    assert d["unit"] == "um"


def test_every_second_slice_with_dz_twice_dx_matches_the_full_stack():
    """The electrode's NMC phase (chords ≈ 16 voxels, resolved at either z spacing): the stack
    with every second z slice, declared dz = 2·dx, gives the full stack's S_V and chords in µm."""
    a = tifffile.imread(shared_data("electrode.tiff"))[:, :128, :128]
    pm = PhaseMap((0, 85, 170))
    idx = to_indices(a, pm)
    inc = ("volume_fraction", "specific_surface_area", "mean_chord_length")
    full = describe(idx, pm, voxel_size=0.39, unit="um", include=inc)["phases"]["85"]
    fib = describe(idx[::2], pm, voxel_size=(0.78, 0.39, 0.39), unit="um", include=inc)
    half = fib["phases"]["85"]
    assert fib["voxel_size"] == [0.78, 0.39, 0.39]
    assert half["specific_surface_area"] == pytest.approx(full["specific_surface_area"], rel=0.03)
    for direction in "zyx":
        assert half["mean_chord_length"][direction] == pytest.approx(
            full["mean_chord_length"][direction], rel=0.05
        )


def test_non_cubic_voxels_skip_path_estimators_with_a_warning():
    rng = np.random.default_rng(0)
    idx = (rng.random((8, 12, 12)) < 0.5).astype(np.uint8)
    d = describe(idx, PhaseMap((0, 1)), voxel_size=(2.0, 1.0, 1.0), unit="um")
    assert "geodesic_tortuosity" not in d["phases"]["1"]
    assert any("cubic voxels" in w for w in d["warnings"])


def test_taufactor_uses_the_spacing_of_non_cubic_voxels():
    """Independent truth: TauFactor on the volume with every z slice doubled, built here (cubic
    voxels of the same structure), against effective_transport of dz = 2·dx."""
    pytest.importorskip("taufactor")
    from scipy import ndimage as ndi

    from napari_gencal.core.descriptors.transport import effective_transport

    rng = np.random.default_rng(3)
    field = ndi.gaussian_filter(rng.standard_normal((16, 16, 16)), (1.0, 2.0, 2.0))
    coarse = (field > -0.2).astype(np.uint8)
    fine = np.repeat(coarse, 2, axis=0)
    for axis in ("z",):
        want = effective_transport(fine, 1, axis, iter_limit=20000)
        got = effective_transport(coarse, 1, axis, spacing=(2.0, 1.0, 1.0), iter_limit=20000)
        plain = effective_transport(coarse, 1, axis, iter_limit=20000)
        assert got.tau_factor == pytest.approx(want.tau_factor, rel=1e-3), (axis, got, want)
        # the spacing matters along z: the plain solver on the coarse voxels misses it
        assert abs(plain.tau_factor / want.tau_factor - 1) > 0.01
