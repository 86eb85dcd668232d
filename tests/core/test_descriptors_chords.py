"""Chord length distributions and mean chord lengths: renewal processes with known law, PoreSpy,
and the electrode reference figures."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.descriptors import (
    DescriptorError,
    chord_length_distribution,
    mean_chord_length,
)
from tests.conftest import shared_data


def renewal_windows(n_lines: int, n: int, seed: int) -> np.ndarray:
    """Windows of ``n`` voxels cut at random offsets from long alternating renewal sequences.

    Phase 1 chords are uniform on 2..40 voxels (mean 21), phase 0 chords geometric with mean 5.
    A window of 48 voxels censors most long chords, which is what the estimator must undo.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n_lines, n), np.uint8)
    m = 20 * n // 26 + 1  # pairs per sequence: ~20 windows long, so the offset sees stationarity
    for r in range(n_lines):
        runs = np.empty(2 * m, np.int64)
        runs[0::2] = rng.integers(2, 41, size=m)
        runs[1::2] = rng.geometric(1 / 5, size=m)
        seq = np.repeat(np.tile(np.array([1, 0], np.uint8), m), runs)
        start = int(rng.integers(seq.size // 2, seq.size - n))
        out[r] = seq[start : start + n]
    return out


TRUE_P1 = np.full(39, 1 / 39)  # lengths 2..40
TRUE_CDF1 = np.cumsum(TRUE_P1)


@pytest.fixture(scope="module")
def renewal():
    return renewal_windows(8000, 48, seed=3)


def test_ht_distribution_recovers_known_law(renewal):
    cld = chord_length_distribution(renewal, 1, "x")
    got = cld.cdf_at(np.arange(2, 41))
    # Monte-Carlo error measured once over 20 seeds (8000 lines, ~8000 complete chords): the
    # maximal CDF deviation is 0.011 ± 0.004 (mean ± SD), so 0.03 is > 4 SD above its mean; the
    # HT mean has a relative SD of 0.76 %, so 3 % is 4 SE.
    assert np.max(np.abs(got - TRUE_CDF1)) < 0.03
    assert cld.mean_ht == pytest.approx(21.0, rel=0.03)
    # Without the weights (border chords dropped) the mean is shortened, as the issue warns.
    assert cld.mean_naive < 0.85 * 21.0


def test_ratio_mean_is_unbiased(renewal):
    # Stationary alternating renewal process: mean phase-1 chord is 21, phase-0 chord 5.
    # Relative SD of the ratio estimator measured over 20 seeds: 0.43 % (phase 1) and 0.55 %
    # (phase 0); tolerances are 4 SD.
    assert mean_chord_length(renewal, 1, 1) == pytest.approx(21.0, rel=0.018)
    assert mean_chord_length(renewal, 0, 1) == pytest.approx(5.0, rel=0.022)


def test_brute_force_tiny_line():
    line = np.array([[1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1]], np.uint8)
    cld = chord_length_distribution(line, 1, 1)
    # complete chords of phase 1: 3 (positions 3..5) and 1 (position 8); border chords censored
    assert cld.n_complete == 2 and cld.n_censored == 2
    # HT weights 1/(n - l - 1) with n = 12: 1/10 for l=1, 1/8 for l=3
    assert np.allclose(cld.length, [1, 3])
    assert np.allclose(cld.probability, np.array([1 / 10, 1 / 8]) / (1 / 10 + 1 / 8))
    # ratio mean: 8 phase voxels of 12, 6 crossings over 11 pairs -> (8/12) / (6/2/11)
    assert mean_chord_length(line, 1, 1) == pytest.approx((8 / 12) / (6 / 2 / 11))


@pytest.mark.filterwarnings("ignore:spacing=0 is deprecated")
def test_matches_porespy_complete_chords():
    ps = pytest.importorskip("porespy")
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    im = ndi.gaussian_filter(rng.standard_normal((30, 36, 40)), 2) > 0
    for ax in range(3):
        ch = ps.filters.apply_chords(im, spacing=0, axis=ax, trim_edges=True, label=True)
        sizes = np.bincount(ch.ravel())[1:]
        sizes = sizes[sizes > 0]
        # PoreSpy's trim_edges also drops the lines lying in the window's side faces
        sl = [slice(1, -1)] * 3
        sl[ax] = slice(None)
        cld = chord_length_distribution(im[tuple(sl)].astype(np.uint8), 1, ax)
        assert cld.n_complete == sizes.size
        assert cld.mean_naive == pytest.approx(sizes.mean(), rel=1e-12)


def test_sections_axes_and_units():
    rng = np.random.default_rng(2)
    stack = (rng.random((4, 30, 40)) < 0.4).astype(np.uint8)
    pooled = mean_chord_length(stack, 1, "x", sections=True)
    as_volume = mean_chord_length(stack, 1, "x")  # the same lines, seen as a 3D volume
    assert pooled == pytest.approx(as_volume)
    assert mean_chord_length(stack, 1, "x", 0.5, sections=True) == pytest.approx(pooled * 0.5)
    cld = chord_length_distribution(stack, 1, "y", voxel_size=(2.0, 2.0), sections=True, unit="um")
    assert cld.unit == "um" and cld.length[0] == 2.0
    with pytest.raises(DescriptorError, match="axis"):
        mean_chord_length(stack[0], 1, "z")


def test_absent_phase_message():
    with pytest.raises(DescriptorError, match="absent"):
        chord_length_distribution(np.zeros((10, 10), np.uint8), 1, 0, n_phases=2)
    assert np.isnan(mean_chord_length(np.zeros((10, 10), np.uint8), 1, 0, n_phases=2))


def test_electrode_reference_chords():
    import tifffile

    idx = (tifffile.imread(shared_data("electrode.tiff")) // 85).astype(np.uint8)
    ref = {0: (8.36, 8.60, 7.82), 1: (16.27, 16.23, 15.32), 2: (2.62, 2.70, 2.48)}
    for phase, means in ref.items():
        for ax, m in enumerate(means):
            cld = chord_length_distribution(idx, phase, ax)
            # The reference script averaged the complete chords without weights: reproduced to
            # its printed precision (±0.005 + rounding).
            assert cld.mean_naive == pytest.approx(m, abs=0.006)
            # The unbiased estimates are longer (border chords are the long ones), by < 8 %.
            assert m < cld.mean < 1.08 * m


def test_ellipsoids_reference_and_border_bias():
    import tifffile

    vol = (tifffile.imread(shared_data("Ellipsoids.tif")) > 0).astype(np.uint8)
    # README: phase-1 mean chord ≈ 8.2 voxels along axis 0 and ≈ 17.8 along axes 1, 2 (simple
    # mean of complete chords, printed to one decimal: ±0.05)
    for ax, ref in ((0, 8.2), (1, 17.8), (2, 17.8)):
        cld = chord_length_distribution(vol, 1, ax)
        assert cld.mean_naive == pytest.approx(ref, abs=0.05)
    # The warning: dropping border chords shortens ~19-voxel chords in a 200³ window by
    # ≈ 8 %; the unbiased estimators must both be longer by 5–10 %.
    cld = chord_length_distribution(vol, 1, 1)
    assert 1.05 < cld.mean / cld.mean_naive < 1.10
    assert 1.02 < cld.mean_ht / cld.mean_naive < 1.10
