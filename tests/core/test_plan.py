"""Settings from the data, the working resolution and scale covariance (core/calibrate/plan.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_gencal.core.calibrate import CalibrationConfig
from napari_gencal.core.calibrate.plan import (
    THIN_PIXELS,
    coarsen,
    correlation_range,
    lossless_factor,
    measure_structure,
    plan_calibration,
    working_factor,
)
from napari_gencal.core.descriptors import mean_chord_length
from napari_gencal.core.generate import generate_sections
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.phases import PhaseMap, to_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PM3 = PhaseMap((0, 1, 2))


def blobs(sigma: float, shape=(2, 256, 256), seed=0, fractions=(0.4, 0.35)) -> np.ndarray:
    """Three phases thresholded from smoothed noise: features ~ sigma pixels."""
    f = gaussian_filter(np.random.default_rng(seed).standard_normal(shape), (0, sigma, sigma))
    q = np.quantile(f, np.cumsum(fractions))
    return np.digitize(f, q).astype(np.uint8)


def up(a: np.ndarray, f: int) -> np.ndarray:
    return np.repeat(np.repeat(a, f, axis=-1), f, axis=-2)


def test_settings_follow_the_feature_size():
    # The same structure at twice the feature size gets twice the lengths — from the data, not
    # from a preset (the images are not made of blocks, so no coarsening hides the difference).
    small = blobs(2.0, (2, 256, 256))
    large = blobs(4.0, (2, 512, 512))
    cfg = CalibrationConfig()
    p_small, _ = plan_calibration(small, 3, cfg)
    p_large, _ = plan_calibration(large, 3, cfg)
    assert p_small.factor == p_large.factor == 1
    ratio = p_large.native.largest / p_small.native.largest
    assert 1.8 < ratio < 2.2
    assert 1.6 < p_large.r_max / p_small.r_max < 2.4
    assert p_large.m == p_large.r_max and p_small.m == p_small.r_max
    assert p_large.window >= p_small.window
    assert p_large.section_size >= 4 * p_large.r_max
    for p in (p_small, p_large):
        assert set(p.reasons) >= {"factor", "r_max", "m", "window"}
    # User values are kept.
    p_user, _ = plan_calibration(small, 3, CalibrationConfig(m=7, r_max=9, window=32))
    assert (p_user.m, p_user.r_max, p_user.window) == (7, 9, 32)


@pytest.mark.parametrize("f, offset", [(2, (0, 0)), (3, (0, 0)), (3, (1, 2))])
def test_up_sampled_images_are_calibrated_on_their_blocks(f, offset):
    base = blobs(2.5, (2, 160, 160), seed=1)
    fine = up(base, f)[:, offset[0] :, offset[1] :]
    assert lossless_factor(base) == (1, (0, 0))
    found, off = lossless_factor(fine)
    assert found == f
    work = coarsen(fine, f, off, axes=(1, 2))
    # The working images are the original's pixels (shifted by whole blocks at most).
    sy, sx = (-offset[0]) % f, (-offset[1]) % f
    assert off == (sy, sx)
    h, w = work.shape[1:]
    start = ((offset[0] + sy) // f, (offset[1] + sx) // f)
    assert np.array_equal(work, base[:, start[0] : start[0] + h, start[1] : start[1] + w])
    p_base, _ = plan_calibration(base, 3, CalibrationConfig())
    p_fine, _ = plan_calibration(fine, 3, CalibrationConfig())
    assert p_fine.factor == f and "blocks" in p_fine.reasons["factor"]
    assert (p_fine.r_max, p_fine.m, p_fine.window) == (p_base.r_max, p_base.m, p_base.window)


def test_a_few_edited_pixels_do_not_hide_the_blocks_but_real_detail_does():
    base = blobs(2.5, (1, 128, 128), seed=2)
    fine = up(base, 2)
    edited = fine.copy()
    edited[0, 5, 7] = (edited[0, 5, 7] + 1) % 3  # one pixel in 65 536
    assert lossless_factor(edited)[0] == 2
    assert lossless_factor(blobs(5.0, (1, 256, 256), seed=3))[0] == 1


def test_coarsening_for_cost_never_loses_the_thin_phase():
    # A large structure (r_max beyond R_WORK) with a thin third phase of ~4 px chords: the cost
    # rule would coarsen by 2 or more, the thin phase allows at most 4 / THIN_PIXELS.
    rng = np.random.default_rng(4)
    f = gaussian_filter(rng.standard_normal((1, 768, 768)), 12.0)
    two = (f > 0).astype(np.uint8)
    edge = (gaussian_filter(two.astype(float), (0, 1.2, 1.2)) - two) > 0.2  # a thin rim
    three = np.where(edge, 2, two).astype(np.uint8)
    s = measure_structure(three, 3)
    fac, _, reason = working_factor(three, s)
    assert s.thinnest / fac >= THIN_PIXELS or fac == 1
    assert fac <= max(1, int(s.thinnest // THIN_PIXELS))
    assert reason
    # Without the thin phase the same structure is coarsened for speed.
    s2 = measure_structure(two, 2)
    fac2, _, reason2 = working_factor(two, s2)
    assert fac2 > 1 and "beyond" in reason2


def test_correlation_range_ignores_a_weak_plateau_but_not_an_oscillation():
    dev = np.array([0.2, 0.1, 0.05, 0.02, 0.008, 0.012, 0.013, 0.012, 0.013])
    assert correlation_range(dev) == 4  # settled at 4; the plateau stays within 2·0.01
    osc = np.array([0.2, 0.1, 0.009, 0.03, 0.005, 0.004, 0.003])
    assert correlation_range(osc) == 4  # the rebound beyond 0.02 moves r0 past it
    assert correlation_range(np.full(5, 0.5)) is None


def test_correlation_range_ignores_a_drift_that_has_not_come_back_by_the_end():
    # Settled at 3, then a slow rise past 2·0.01 to the end of the range (a trend across the
    # image): r0 stays 3, where the old rule gave None (r_max at the cap).
    drift = np.array([0.2, 0.05, 0.02, 0.009, 0.012, 0.018, 0.021, 0.024, 0.026])
    assert correlation_range(drift) == 3
    # An oscillation that came back is still honoured even when a drift follows it.
    both = np.array([0.2, 0.009, 0.03, 0.005, 0.004, 0.021, 0.025, 0.03])
    assert correlation_range(both) == 3


def test_too_small_images_are_refused_with_the_size_needed():
    # A 128² image of ~60 px particles cannot show how its structure repeats.
    img = blobs(14.0, (1, 128, 128), seed=5, fractions=(0.5, 0.3))
    big = measure_structure(img, 3).largest
    assert big > 32
    with pytest.raises(ValueError, match=r"at least \d+×\d+ pixels") as exc:
        plan_calibration(img, 3, CalibrationConfig())
    assert "128×128" in str(exc.value)


def test_a_label_absent_from_some_sections_is_fine():
    stack = blobs(2.0, (6, 96, 96), seed=6)
    stack[:3][stack[:3] == 2] = 1  # phase 2 missing from half of the sections
    plan, work = plan_calibration(stack, 3, CalibrationConfig())
    assert plan.native.fractions[2] > 0 and np.all(np.isfinite(plan.native.chords))
    assert work.shape == stack.shape


def test_model_length_scale_scales_chords_and_keeps_fractions():
    # Scale covariance of the model itself: kernels at x / s give every length times s.
    m = ExcursionModel.default("high", m=6, fractions=[0.4, 0.35, 0.25], width=1.8, phase_map=PM3)
    a = to_indices(generate_sections(m, 6, 192, seed=1, device="cpu"), PM3)
    b = to_indices(generate_sections(m.copy(length_scale=2.0), 6, 384, seed=2, device="cpu"), PM3)
    for i in range(3):
        ca = np.mean([mean_chord_length(a, i, axis=ax, sections=True) for ax in "yx"])
        cb = np.mean([mean_chord_length(b, i, axis=ax, sections=True) for ax in "yx"])
        # Same number of structures per image: the ratio's Monte-Carlo sd is a few per cent.
        assert cb / ca == pytest.approx(2.0, rel=0.08)
        assert np.mean(b == i) == pytest.approx(np.mean(a == i), abs=0.03)


def test_calibrating_up_sampled_data_gives_the_same_model_at_scale_f():
    # Scale covariance of the whole calibration: the data up-sampled ×2 (nearest neighbour) is
    # calibrated on its blocks — the same working data, the same steps and seed — so the model is
    # the original's with length_scale 2, kernel for kernel.
    from napari_gencal.core.calibrate import prepare_data
    from napari_gencal.core.calibrate.pipeline import CalibrationPipeline

    base = np.minimum(blobs(2.0, (2, 128, 128), seed=7), 1)
    cfg = CalibrationConfig(
        algorithm=1, batch=2, pretrain_model_steps=2, steps_per_epoch=3, max_epochs=2,
        early_stop_start=1, patience=10, eval_sections=2, eval_size=64, init_scale_search=False,
        device="cpu", seed=5, time_limit=None,
    )  # fmt: skip
    models = []
    for f in (1, 2):
        data = prepare_data(up(base, f), "0,1")
        pipe = CalibrationPipeline(data, cfg, check=False)
        for _ in pipe.run():
            pass
        models.append(pipe.result)
    one, two = models
    assert one.length_scale == 1.0 and two.length_scale == 2.0
    assert two.metadata["settings_from_data"]["working_factor"] == 2
    for name in one.kernels:
        assert np.allclose(one.kernels[name], two.kernels[name])
    assert (one.sigma1, one.a, one.lambda1) == pytest.approx((two.sigma1, two.a, two.lambda1))
