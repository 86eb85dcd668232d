"""Two phases of 3D data: which phase is the excursion set, and σ1, chosen for connectivity —
on sets made by each construction, a rock-like pore space, and the pipeline's decision."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_gencal.core.calibrate import CalibrationConfig, prepare_data
from napari_gencal.core.calibrate import connectivity_order as co
from napari_gencal.core.calibrate.pipeline import CalibrationPipeline
from napari_gencal.core.generate import generate, generate_sections
from napari_gencal.core.model import ExcursionModel, thresholds_for_fractions
from napari_gencal.core.phases import PhaseMap, to_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PM2 = PhaseMap((0, 1))


def tiny(**kw) -> CalibrationConfig:
    base = dict(
        batch=2, pretrain_model_steps=2, pretrain_disc_steps=2, steps_per_epoch=3, max_epochs=2,
        early_stop_start=1, patience=10, eval_sections=2, eval_size=64, init_scale_search=False,
        disc_width=8, device="cpu", seed=3, time_limit=None, score="surface", algorithm=1,
    )  # fmt: skip
    return CalibrationConfig(**{**base, **kw})


def truth(phi: float, sigma1: float = 0.2, m: int = 6, width: float = 2.0) -> ExcursionModel:
    """Label 0 = the excursion set at fraction ``phi`` (χ²-dominated for small σ1)."""
    m0 = ExcursionModel.default("high", m=m, n_phases=2, fractions=[phi, 1 - phi], width=width,
                                phase_map=PM2).copy(sigma1=sigma1)  # fmt: skip
    return thresholds_for_fractions(m0, [phi, 1 - phi])


def swapped(model: ExcursionModel, phi_first: float) -> ExcursionModel:
    """The same fields with the other label as the excursion set (fraction ``phi_first``)."""
    lab = model.phase_map.labels
    return thresholds_for_fractions(model.copy(phase_map=PhaseMap((lab[1], lab[0]))),
                                    [phi_first, 1 - phi_first])  # fmt: skip


def stub(vol: np.ndarray) -> SimpleNamespace:
    """What the functions read of a pipeline: the data, the seed, the rescaling, the sections."""
    return SimpleNamespace(data=SimpleNamespace(volume=vol), config=SimpleNamespace(seed=0),
                           _rescaled=lambda m: m, _work=vol)  # fmt: skip


def test_candidate_orders_of_two_phases_are_both_with_3d_data_only():
    from napari_gencal.core.calibrate.phase_order import candidate_orders

    s = np.zeros((2, 8, 8), np.uint8)
    s[:, :, 4:] = 1
    assert candidate_orders(s, 2)[0] == [(0, 1)]
    assert candidate_orders(s, 2, three_d=True)[0] == [(0, 1), (1, 0)]


@pytest.mark.parametrize("first", [0, 1])
def test_connectivity_tells_the_excursion_set_from_its_complement(first):
    # Data made with label `first` as the excursion set at 15 % (isolated blobs; the other label
    # its connected complement). A model in the data's own construction must be closer in
    # connectivity than the same fields in the other order, by more than the margin.
    t = truth(0.15) if first == 0 else swapped(truth(0.15), 0.15)
    vol = to_indices(generate(t, (64, 64, 64), seed=5, device="cpu"), PM2)
    assert abs(float((vol == first).mean()) - 0.15) < 0.03
    pf = co.percolation_profile(vol, 2)
    assert pf[first] < 0.3 and pf[1 - first] > 0.9  # blobs vs network
    perm = (first, 1 - first)
    d_true, rows = co.connectivity_distance(stub(vol), perm, t)
    d_other, _ = co.connectivity_distance(stub(vol), perm[::-1], swapped(t, 0.85))
    assert rows[0][0] == pytest.approx(pf[first])  # the data's profile, in the order asked
    assert d_other - d_true > co.CONNECTIVITY_MARGIN


def test_sigma1_is_chosen_for_the_connectivity_of_a_connected_complement():
    # Data: the 13 % complement of a χ²-dominated set (σ1 = 0.05), a connected network. A start
    # at σ1 = 1 makes that complement far less connected; the scan must pick a small σ1 and
    # match the fractions. Half and half: every σ1 connects both phases, nothing is chosen.
    phi = 0.87
    t = truth(phi, sigma1=0.05)
    vol = to_indices(generate(t, (80, 80, 80), seed=6, device="cpu"), PM2)
    start = thresholds_for_fractions(t.copy(sigma1=1.0), [phi, 1 - phi])
    model, rec = co.connectivity_sigma(stub(vol), (0, 1), start)
    assert model is not None, rec
    d = rec["distances"]
    assert float(model.sigma1) <= 0.1 and d[rec["chosen"]] < d["1"] - co.SIGMA_MARGIN
    twin = to_indices(generate(model, (64, 64, 64), seed=1, device="cpu"), PM2)
    assert abs(float((twin == 1).mean()) - (1 - phi)) < 0.02
    half = thresholds_for_fractions(t, [0.5, 0.5])
    vol2 = to_indices(generate(half, (64, 64, 64), seed=6, device="cpu"), PM2)
    start2 = thresholds_for_fractions(half.copy(sigma1=1.0), [0.5, 0.5])
    assert co.connectivity_sigma(stub(vol2), (0, 1), start2)[0] is None


def test_a_rock_like_pore_space_becomes_the_complement(monkeypatch):
    # 12 % pore left between overlapping balls, connected: the held-out rock of issue 16 had its
    # pore, named first, made the excursion set, which barely percolated (τ 764 against 4.7).
    # The pipeline must make it the complement, say why, fix σ1 and calibrate from there.
    from .boolean_truth import _centres, _paint, intensity

    rng = np.random.default_rng(4)
    n, r = 80, 3.0
    vol = np.where(_paint(n, _centres(n, r, intensity(0.87, r), rng), r), 200, 100)
    vol = vol.astype(np.uint8)
    assert 0.09 < (vol == 100).mean() < 0.16
    assert co.percolation_profile((vol == 200).astype(np.uint8), 2)[0] > 0.6  # pore connected
    monkeypatch.setattr(co, "CONNECTIVITY_SIDE", 64)  # a smaller twin: test speed
    pipe = CalibrationPipeline(prepare_data(vol, "100,200"), tiny(window=32), check=False)
    assert pipe.order is None and pipe._candidates == [(0, 1), (1, 0)]
    messages = [rec.message for rec in pipe.run() if rec.message]
    assert messages[0].startswith("phase order: comparing")  # said before the seconds it takes
    assert any("as its complement" in m for m in messages)
    assert pipe.order.perm == (1, 0), pipe.order.reason
    assert "connectivity" in pipe.order.reason
    conn = pipe.trial_record["connectivity"]
    assert conn["200,100"]["distance"] + co.CONNECTIVITY_MARGIN < conn["100,200"]["distance"]
    assert tuple(pipe.result.phase_map.labels) == (200, 100)
    if "kept fixed" in pipe.order.reason:  # σ1 chosen: it stayed where it was put
        chosen = float(conn["sigma1"]["chosen"])
        assert pipe.result.sigma1 == pytest.approx(chosen, rel=1e-4)


def test_when_both_orders_percolate_alike_the_users_order_and_run_are_kept(monkeypatch):
    t = truth(0.5, sigma1=1.0, m=4, width=1.5)
    vol = generate(t, (48, 48, 48), seed=2, device="cpu")
    data = prepare_data(vol, "1,0")
    calls = []

    def equal(p, perm, model, device="cpu", target=None):
        calls.append(perm)
        return 0.02, [(1.0, 1.0), (1.0, 1.0)]

    monkeypatch.setattr(co, "connectivity_distance", equal)
    pipe = CalibrationPipeline(data, tiny(), check=False)
    for _ in pipe.run():
        pass
    assert pipe.order.perm == (0, 1) and "percolate alike" in pipe.order.reason
    assert calls[:2] == [(0, 1), (1, 0)] and not pipe._connectivity_init
    assert tuple(pipe.result.phase_map.labels) == (1, 0)
    # Off: the user's order at once, nothing measured.
    calls.clear()
    off = CalibrationPipeline(data, tiny(connectivity="off"), check=False)
    assert off.order is not None and off.order.perm == (0, 1) and not calls


def test_fix_sigma1_keeps_sigma1_while_the_rest_learns():
    from napari_gencal.core.calibrate import Calibration

    pm = PhaseMap((10, 20, 30))
    fr = [0.42, 0.33, 0.25]
    m = ExcursionModel.default("high", m=4, fractions=fr, width=1.5, phase_map=pm)
    sec = generate_sections(thresholds_for_fractions(m.copy(a=0.7), fr), 2, 96, seed=1,
                            device="cpu")  # fmt: skip
    idx = to_indices(sec, pm)
    start = m.copy(sigma1=0.3)
    runs = {}
    for fix in (True, False):
        cal = Calibration(idx, pm, tiny(m=4, fix_sigma1=fix, lr_theta=0.05), init_model=start)
        for _ in cal.run():
            pass
        runs[fix] = cal.best_model
    assert runs[True].sigma1 == pytest.approx(0.3, abs=1e-6)
    assert runs[False].sigma1 != pytest.approx(0.3, abs=1e-4)  # it would have moved
    assert runs[True].kernels != start.kernels
