"""Composite conductivity, electrode tortuosity and accessible active material.

Truth: exact formulas on structures solved by hand (slabs in parallel and in series, straight
channels, channels that react only at their end, particles placed by hand) and TauFactor's own
``ElectrodeSolver`` on a small random volume.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_gencal.core.descriptors import DescriptorError
from napari_gencal.core.descriptors.composite import (
    accessible_active_material,
    composite_conductivity,
    electrode_tortuosity,
)

pytest.importorskip("taufactor")


def _channels(n: int = 24, side: int = 20, end_phase: int | None = None) -> tuple[np.ndarray, int]:
    """Straight electrolyte (0) channels through reactive solid (1), away from the walls."""
    v = np.ones((n, side, side), np.uint8)
    v[:, 2::4, 2::4] = 0
    if end_phase is not None:  # the channels end on a voxel of end_phase; walls inert (2)
        v[v == 1] = 2
        v[-1] = end_phase
    return v, int(np.count_nonzero(v[0] == 0))


def test_straight_channels_have_electrode_tortuosity_one():
    n = 24
    v, _ = _channels(n)
    r = electrode_tortuosity(v, 0)
    # per channel and unit current: sum of the squared currents = N/3 + 1/(6N) → τ_e = 1 + 1/(2N²)
    assert r.tau_e == pytest.approx(1 + 1 / (2 * n * n), rel=1e-6)
    assert r.connected_fraction == 1.0


def test_reaction_only_at_the_collector_end_gives_about_three():
    n = 24
    v, m = _channels(n, end_phase=1)
    r = electrode_tortuosity(v, 0, reactive=(1,))
    # the whole current runs the channel (N − 1 voxels): ½ + (N − 2) per channel, m in parallel
    eps = m * (n - 1) / v[0].size / n
    assert r.tau_e == pytest.approx(3 * eps * (0.5 + n - 2) / m * v[0].size / n, rel=1e-6)
    # = 3 (1 − 1/N)(1 − 1.5/N): three times the straight channel's, up to the end voxels
    assert r.tau_e == pytest.approx(3 * (1 - 1 / n) * (1 - 1.5 / n), rel=1e-6)


def test_electrode_tortuosity_agrees_with_taufactor():
    import taufactor

    rng = np.random.default_rng(0)
    f = ndi.gaussian_filter(rng.normal(size=(12, 12, 12)), 1.5)
    solid = (f > np.quantile(f, 0.55)).astype(np.uint8)
    solver = taufactor.ElectrodeSolver((solid == 0).astype(np.uint8), device="cpu")
    with contextlib.redirect_stdout(io.StringIO()):
        solver.solve(verbose=False, iter_limit=20000)
    theirs = float(np.ravel(solver.tau_e)[0])
    ours = electrode_tortuosity(solid, 0, boundary="taufactor").tau_e
    # theirs is a finite-frequency AC solve stopped on a running SD: 0.4 % off its limit here
    assert ours == pytest.approx(theirs, rel=0.01)


def test_composite_conductivity_of_slabs():
    v = np.zeros((16, 12, 12), np.uint8)
    v[:, :, 4:8] = 1
    v[:, :, 8:] = 2
    par = composite_conductivity(v, {1: 2.0, 2: 10.0}, "z")
    assert par.sigma_eff == pytest.approx((4 * 2.0 + 4 * 10.0) / 12, rel=0.01)
    assert par.tau == pytest.approx(1.0, rel=0.01)
    w = np.ones((18, 8, 8), np.uint8)
    w[6:12] = 2
    ser = composite_conductivity(w, {1: 1.0, 2: 4.0}, "z")
    assert ser.sigma_eff == pytest.approx(1 / (12 / 18 / 1.0 + 6 / 18 / 4.0), rel=0.02)


def test_one_conducting_phase_matches_plain_transport():
    from napari_gencal.core.descriptors import effective_transport

    rng = np.random.default_rng(1)
    f = ndi.gaussian_filter(rng.normal(size=(24, 24, 24)), 2.0)
    v = (f > np.quantile(f, 0.5)).astype(np.uint8)
    one = composite_conductivity(v, {0: 3.0}, "y")
    plain = effective_transport(v, 0, "y")
    assert one.sigma_eff == pytest.approx(3.0 * plain.effective_diffusivity, rel=0.02)


def test_non_percolating_composite_is_reported_not_solved():
    v = np.zeros((10, 8, 8), np.uint8)
    v[5] = 1  # an insulating layer across the whole section
    r = composite_conductivity(v, {0: 1.0}, "z")
    assert not r.percolates and r.sigma_eff == 0 and np.isnan(r.tau)
    assert r.to_dict()["tau"] is None
    closed = np.ones((6, 6, 6), np.uint8)
    closed[2:4, 2:4, 2:4] = 0  # a closed pore: no ionic path from the separator
    e = electrode_tortuosity(closed, 0)
    assert np.isnan(e.tau_e) and e.connected_fraction == 0.0


def test_accessible_active_material_by_hand():
    # 0 electrolyte, 1 active, 2 binder (conducts), 3 inert; separator at z = 0
    v = np.full((10, 10, 10), 3, np.uint8)
    v[:, 0:2, :] = 0  # an electrolyte slab spanning the thickness
    v[:, 2, :] = 2  # a binder wall spanning the thickness (to the collector)
    v[4:6, 3:5, 0:2] = 1  # particle A: on the binder, not touching electrolyte → not ionic
    v[4:6, 1:3, 4:6] = 1  # particle B: touches electrolyte and binder → accessible
    v[4:6, 0:2, 8:10] = 1  # particle C: in the electrolyte, no electronic path
    v[4:6, 2, 8:10] = 0  # (cut C off from the binder wall)
    acc = accessible_active_material(v, 1, 0, (2,), "z", n_phases=4)
    total = np.count_nonzero(v == 1)
    b = 2 * 2 * 2
    assert acc.fraction == pytest.approx(b / total)
    assert acc.ionic == pytest.approx((b + 8) / total)
    assert acc.electronic == pytest.approx((b + 8) / total)
    assert acc.electrolyte_percolates and acc.electronic_percolates


def test_bad_phases_are_refused():
    v = np.zeros((6, 6, 6), np.uint8)
    v[:, :, 3:] = 1
    with pytest.raises(DescriptorError, match="not phase indices"):
        electrode_tortuosity(v, 5)
    with pytest.raises(DescriptorError, match="positive"):
        composite_conductivity(v, {1: 0.0})
    with pytest.raises(DescriptorError, match="absent"):
        accessible_active_material(v, 2, 0, n_phases=3)
