"""Order decisions on evidence (close calls get a second round), the evaluation score, per-field
anisotropy recovered from a known model, and `--continue` that keeps the better model."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.calibrate import CalibrationConfig, prepare_data
from napari_gencal.core.calibrate import trials as trials_mod
from napari_gencal.core.calibrate.pipeline import CalibrationPipeline
from napari_gencal.core.calibrate.remedy import suggest_remedies, verdict_badness
from napari_gencal.core.generate import generate, generate_sections
from napari_gencal.core.model import ExcursionModel, thresholds_for_fractions
from napari_gencal.core.phases import PhaseMap, to_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PM = PhaseMap((10, 20, 30))


def tiny(**kw) -> CalibrationConfig:
    base = dict(
        batch=2, pretrain_model_steps=2, pretrain_disc_steps=2, steps_per_epoch=3, max_epochs=2,
        early_stop_start=1, patience=10, eval_sections=2, eval_size=64, init_scale_search=False,
        disc_width=8, device="cpu", seed=3, time_limit=None, score="surface",
    )  # fmt: skip
    return CalibrationConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def sections() -> np.ndarray:
    fr = [0.42, 0.33, 0.25]
    m = ExcursionModel.default("high", m=4, fractions=fr, width=1.5, phase_map=PM)
    m = thresholds_for_fractions(m.copy(a=0.7), fr)
    return generate_sections(m, 2, 96, seed=1, device="cpu")


def test_paired_decision():
    a = np.array([0.10, 0.12, 0.11, 0.13])
    win, close, diff, se = trials_mod.paired_decision(a, a + 0.05)
    assert win == 0 and not close and diff == pytest.approx(-0.05)
    noise = np.array([0.004, -0.003, 0.002, -0.002])
    win, close, *_ = trials_mod.paired_decision(a, a + noise)
    assert close  # a difference within two standard errors of the paired differences


def test_a_close_order_call_gets_a_second_round_and_is_decided_on_more_evidence(
    sections, monkeypatch
):
    data = prepare_data(sections, "30,10,20")
    pipe = CalibrationPipeline(data, tiny(algorithm=1), check=False)
    a, b = pipe._candidates
    calls = []

    def fake_scores(engine, seeds):
        # First round: within noise. Second round (twice the sections): b clearly better.
        perm = next(q for q, e in pipe._trial_engines.items() if e is engine)
        calls.append((perm, len(seeds)))
        base = np.linspace(0.1, 0.11, len(seeds))
        if len(seeds) == trials_mod.EVIDENCE_SEEDS:
            return base + (0.001 if perm == a else 0.0) * np.array([1, -1, 1, -1])
        return base + (0.02 if perm == a else 0.0)

    monkeypatch.setattr(trials_mod, "score_samples", fake_scores)
    for _ in trials_mod.run_trials(pipe):
        pass
    rounds = pipe.trial_record["rounds"]
    assert len(rounds) == 2 and rounds[0]["close"] and not rounds[1]["close"]
    assert pipe.order.perm == b
    assert "second round" in pipe.order.reason
    assert [n for _, n in calls] == [4, 4, 8, 8]


def test_evaluation_score_is_what_the_verdict_judges(sections):
    from napari_gencal.core.calibrate.loop import Calibration

    idx = to_indices(sections, PM)
    cal = Calibration(idx, PM, tiny())
    ev = cal.evaluate()
    rel = np.abs(np.subtract(ev["specific_surface_area"], ev["data_specific_surface_area"]))
    rel /= np.asarray(ev["data_specific_surface_area"])
    assert ev["score"] == pytest.approx(0.5 * (rel.mean() + rel.max()))
    cal2 = Calibration(idx, PM, tiny(score_euler=1.0))
    ev2 = cal2.evaluate()
    assert ev2["score"] > ev["score"]  # the connectivity part adds


def test_per_field_anisotropy_is_recovered_from_a_known_model():
    from napari_gencal.core.calibrate.anisotropy import FIELD_GROUPS, fit_field_anisotropy

    # a = 0: phase 1 is made by X1 and eps_X alone, phase 2 by X2 and eps_Y (eps_Z unused)
    fr = [0.35, 0.35, 0.30]
    truth = ExcursionModel.default("high", m=4, fractions=fr, width=1.5, phase_map=PM, a=0.0,
                                   sigma1=0.6, sigma2=0.6)  # fmt: skip
    truth = thresholds_for_fractions(truth, fr)
    b = {"X1": 0.6, "eps_X": 0.6, "X2": 1.0, "eps_Y": 1.0, "eps_Z": 1.0}
    vol = to_indices(generate(truth.copy(anisotropy_fields=b), (96, 96, 96), seed=2,
                              device="cpu"), PM)  # fmt: skip
    shared, fields, record = fit_field_anisotropy(vol, truth, seed=1)
    assert record["per_field"], record
    g1, g2, _ = FIELD_GROUPS[3]
    assert abs(fields[g1[0]] - 0.6) <= 0.05 and abs(fields[g2[0]] - 1.0) <= 0.05, record
    # one b cannot serve both phases: the shared fit misses phase 1 or 2 by more than 3 %
    assert max(abs(e) for e in record["shared_ratios_error"][:2]) > 0.03


def test_remedies_and_badness():
    rows = [
        {"descriptor": "specific_surface_area", "ok": False, "error": 0.1, "tolerance": 0.05,
         "name": "A", "direction": None, "what": "sections"},
        {"descriptor": "tortuosity_factor", "ok": False, "error": -0.6, "tolerance": 0.15,
         "name": "A", "direction": "z", "what": "transport"},
    ]  # fmt: skip
    verdict = {"fits": False, "rows": rows}
    meta = {"calibration": {"stop_reason": "time_limit"}, "construction": {"chosen": "auto"}}
    kinds = [r["kind"] for r in suggest_remedies(verdict, meta)]
    assert kinds == ["longer", "plurigaussian"]
    # each failing row: 1 + how many tolerances beyond its tolerance (S_V 2×, τ 4×)
    assert verdict_badness(verdict) == pytest.approx(2.0 + 4.0)
    assert verdict_badness({"fits": True, "rows": []}) == 0.0
    assert suggest_remedies({"fits": True, "rows": []}, meta) == []
    # Two phases: no truncation rule to learn; the connectivity term is the remedy.
    two = dict(meta, phase_order={"model_order_labels": [1, 0]})
    assert [r["kind"] for r in suggest_remedies(verdict, two)] == ["longer", "connectivity"]


def test_continue_improves_a_stopped_run_and_keeps_the_better_model(sections):
    data = prepare_data(sections, "10,20,30")
    first = CalibrationPipeline(data, tiny(max_epochs=1), auto_order=False)
    for _ in first.run():
        pass
    stopped = first.result
    assert stopped.metadata["verdict"] is not None
    again = CalibrationPipeline(data, tiny(max_epochs=6), continue_from=stopped, remedy="longer")
    assert again.order.perm == (0, 1, 2) and "continued" in again.order.reason
    for _ in again.run():
        pass
    new = again.result
    rec = new.metadata["continued"]
    assert rec["kind"] == "longer"
    assert rec["badness_new"] <= rec["badness_previous"] or "previous" in rec["kept"]
    # the continued engine started from the stopped model: its best is at least as good
    assert again.engine.best_score <= again._warm_score * (1 + 1e-9)
    # other data are refused
    other = prepare_data(sections[:1], "10,20,30")
    with pytest.raises(ValueError, match="other data"):
        CalibrationPipeline(other, tiny(), continue_from=stopped)


def test_a_fib_sem_stack_is_fitted_on_its_grid_and_refuses_non_square_sections():
    # every second z slice of an isotropic stack, declared dz = 2·dx: b per voxel ≈ ½ of the
    # full stack's, the same in physical units
    from napari_gencal.core.io import LabelImage

    fr = [0.4, 0.35, 0.25]
    truth = thresholds_for_fractions(
        ExcursionModel.default("high", m=6, fractions=fr, width=2.0, phase_map=PM), fr
    )
    vol = generate(truth, (96, 64, 64), seed=4, device="cpu")
    full = prepare_data(LabelImage(vol, PM, voxel_size=(1.0, 1.0, 1.0)), axis="z")
    half = prepare_data(LabelImage(vol[::2], PM, voxel_size=(2.0, 1.0, 1.0)), axis="z")
    assert half.anisotropy * 2 == pytest.approx(full.anisotropy, rel=0.1)
    assert "in physical units" in half.anisotropy_note
    with pytest.raises(ValueError, match="not square"):
        prepare_data(LabelImage(vol, PM, voxel_size=(1.0, 1.0, 2.0)), axis="z")


def test_the_construction_that_made_the_data_wins_the_paired_decision():
    # Sections made by the paper's rule (tilt 0) and by a tilted plurigaussian rule (0.7 rad),
    # same fields and fractions: the evaluation score and the paired decision that choose between
    # candidates (order trials, --continue keeping the better model) must prefer the rule that
    # made the data, clearly, on common evaluation sections.
    from napari_gencal.core.calibrate.loop import Calibration

    fr = [0.4, 0.3, 0.3]
    base = ExcursionModel.default("high", m=4, fractions=fr, width=1.5, phase_map=PM)
    rules = {t: thresholds_for_fractions(base.copy(tilt=t), fr) for t in (0.0, 0.7)}
    cfg = tiny(m=4, window=64, eval_sections=4, eval_size=128, score_euler=1.0)
    for made_by, truth in rules.items():
        idx = to_indices(generate_sections(truth, 2, 128, seed=1, device="cpu"), PM)
        scores = {}
        for tilt, cand in rules.items():
            cal = Calibration(idx, PM, cfg, init_model=cand)
            scores[tilt] = np.array([cal.evaluate(cal._candidate(), seed=s)["score"]
                                     for s in range(4)])  # fmt: skip
        other = 0.7 if made_by == 0.0 else 0.0
        win, close, diff, _ = trials_mod.paired_decision(scores[made_by], scores[other])
        assert win == 0 and not close, (made_by, scores)
        assert scores[other].mean() > 3 * scores[made_by].mean()


def test_continue_from_a_missing_model_says_so(tmp_path, capsys):
    import tifffile

    from napari_gencal.cli import main

    img = np.random.default_rng(0).integers(0, 3, (64, 64)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "img.tif", img)
    rc = main(["calibrate", str(tmp_path / "img.tif"), "--phases", "0,1,2", "--out",
               str(tmp_path / "m.json"), "--continue", str(tmp_path / "none.json")])  # fmt: skip
    assert rc == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
