"""The calibration pipeline every front end runs (core/calibrate/pipeline.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.calibrate import CalibrationConfig, prepare_data
from napari_gencal.core.calibrate.pipeline import CalibrationPipeline
from napari_gencal.core.generate import generate_sections
from napari_gencal.core.model import ExcursionModel, thresholds_for_fractions
from napari_gencal.core.phases import PhaseMap

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PM = PhaseMap((10, 20, 30))


def tiny(**kw) -> CalibrationConfig:
    base = dict(
        batch=2, pretrain_model_steps=2, pretrain_disc_steps=2, steps_per_epoch=3, max_epochs=2,
        early_stop_start=1, patience=10, eval_sections=2, eval_size=64, init_scale_search=False,
        disc_width=8, device="cpu", seed=3, time_limit=None, trial_steps=20,
    )  # fmt: skip
    return CalibrationConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def sections() -> np.ndarray:
    fr = [0.42, 0.33, 0.25]
    m = ExcursionModel.default("high", m=4, fractions=fr, width=1.5, phase_map=PM)
    m = thresholds_for_fractions(m.copy(a=0.7), fr)
    return generate_sections(m, 2, 96, seed=1, device="cpu")


def run(pipe: CalibrationPipeline, stop_after: int | None = None) -> list:
    recs = []
    for rec in pipe.run():
        recs.append(rec)
        if stop_after is not None and len(recs) == stop_after:
            pipe.cancel()
    return recs


def test_a_finished_run_is_rescaled_ordered_and_checked(sections):
    pipe = CalibrationPipeline(prepare_data(sections, "30,10,20"), tiny())
    recs = run(pipe)
    stages = [r.stage for r in recs]
    assert stages[0] == "order" and "high" in stages and stages[-1] == "finish"
    assert recs[-1].done and [r for r in recs if r.message and "phase order" in r.message]
    model = pipe.result
    assert model is pipe.best_model
    meta = model.metadata
    assert meta["verdict"]["line"] == pipe.verdict.line
    assert meta["phase_order"]["user_order_labels"] == [30, 10, 20]
    assert sorted(model.phase_map.labels) == [10, 20, 30]
    assert model.user_phase_map.labels == (30, 10, 20)
    assert meta["settings_from_data"]["working_factor"] == 1 and model.length_scale == 1.0
    assert len(meta["phase_order"]["trial_scores"]) == 2
    # the run starts from the winning trial's best and keeps it unless something beats it
    assert pipe.engine.best_score <= pipe._warm_score * (1 + 1e-6)
    # the order trials were judged on the same evaluation sections (paired evidence)
    assert meta["trials"]["rounds"] and meta["trials"]["decided_by"]
    assert "phase order" in pipe.summary() and "verdict:" in pipe.summary()


def test_cancelling_during_the_trials_keeps_a_model_marked_unchecked(sections):
    pipe = CalibrationPipeline(prepare_data(sections, "10,20,30"), tiny(max_epochs=50))
    recs = run(pipe, stop_after=2)
    assert recs[0].stage == "order" and recs[-1].done
    assert pipe.stop_reason == "cancelled" and pipe.verdict is None
    best = pipe.best_model
    assert best.metadata["verdict"] is None and isinstance(best, ExcursionModel)


def test_low_model_takes_the_papers_route(sections):
    pipe = CalibrationPipeline(
        prepare_data(sections, "10,20,30"), tiny(model="low"), auto_order=False, check=False
    )
    recs = run(pipe)
    stages = [r.stage for r in recs]
    assert "high" in stages and "low" in stages and stages.index("high") < stages.index("low")
    assert pipe.result.kind == "low" and "reduction" in pipe.result.metadata
    assert set(pipe.models) == {"high", "low"}


def test_resuming_keeps_the_checkpoint_phase_order(sections, tmp_path):
    ck = tmp_path / "run.ckpt"
    first = CalibrationPipeline(prepare_data(sections, "30,10,20"), tiny(checkpoint=str(ck)))
    run(first)
    assert ck.exists()
    again = CalibrationPipeline(
        prepare_data(sections, "30,10,20"), tiny(max_epochs=3), resume=str(ck)
    )
    assert again.order.perm == first.order.perm
    assert again.engine.step == first.engine.step
    other = np.where(sections == 30, 40, sections).astype(np.uint8)
    with pytest.raises(ValueError, match="calibrated on phases"):
        CalibrationPipeline(prepare_data(other, "10,20,40"), tiny(), resume=str(ck))


def _stretched_image(b: float) -> np.ndarray:
    """A two-phase section of a known model stretched by ``b`` along x (model axis 2)."""
    fr = [0.45, 0.55]
    m = ExcursionModel.default("high", m=8, n_phases=2, fractions=fr, width=3.0,
                               phase_map=PhaseMap((1, 2)))  # fmt: skip
    m = thresholds_for_fractions(m, fr).copy(axis_stretch=(1.0, 1.0, b))
    return generate_sections(m, 1, 384, seed=5, device="cpu")[0]


def test_inplane_stretch_of_2d_sections_is_recovered_and_isotropic_ones_are_left_alone():
    from napari_gencal.core.calibrate.data import inplane_stretch

    img = _stretched_image(1.6)
    b, note = inplane_stretch(img[None] - 1, 2)
    # Eq. 40 between x and y on one 384² section: within the 5 % that its chords' noise allows
    assert b == pytest.approx(1.6, rel=0.05) and "sections' x" in note
    iso = _stretched_image(1.0)
    assert inplane_stretch(iso[None] - 1, 2) == (1.0, "")
    assert prepare_data(iso, "1,2").inplane_b == 1.0
    assert prepare_data(img, "1,2", fit_b=False).inplane_b == 1.0


def test_a_2d_run_on_anisotropic_sections_calibrates_and_keeps_the_stretch_along_x():
    img = _stretched_image(1.6)
    data = prepare_data(img, "1,2")
    assert data.inplane_b == pytest.approx(1.6, rel=0.05)
    pipe = CalibrationPipeline(data, tiny())
    run(pipe)
    model = pipe.result
    assert model.axis_stretch == pytest.approx((1.0, 1.0, data.inplane_b))
    assert model.anisotropy == 1.0 and model.anisotropy_axis == 0
    assert model.metadata["in_plane_stretch"]["x_over_y"] == pytest.approx(data.inplane_b)
    # the engine trained the stretched model (not a stretch added afterwards)
    assert pipe.engine.module.axis_stretch == pytest.approx((1.0, 1.0, data.inplane_b))


def test_a_stack_whose_sections_are_anisotropic_gets_the_stretch_on_the_right_data_axis():
    from napari_gencal.core.calibrate.pipeline import section_stretch_of

    # sections normal to x (axis 2) have (z, y) as (rows, columns); the longer direction is
    # stretched: x chords half the y chords → the rows' axis by 2
    assert section_stretch_of(2, 0.5) == (2.0, 1.0, 1.0)
    assert section_stretch_of(0, 0.5) == (1.0, 2.0, 1.0)
    assert section_stretch_of(1, 2.0) == (1.0, 1.0, 2.0)
    assert section_stretch_of(0, 1.0) == (1.0, 1.0, 1.0)
    fr = [0.45, 0.55]
    m = ExcursionModel.default("high", m=6, n_phases=2, fractions=fr, width=2.0,
                               phase_map=PhaseMap((1, 2)))  # fmt: skip
    m = thresholds_for_fractions(m, fr).copy(axis_stretch=(1.0, 1.0, 1.8))
    from napari_gencal.core.generate import generate

    vol = generate(m, (64, 96, 96), seed=2, device="cpu")
    data = prepare_data(vol, "1,2", axis="z")
    assert data.inplane_b == pytest.approx(1.8, rel=0.08)
