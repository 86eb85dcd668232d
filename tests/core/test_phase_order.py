"""The phase-order check (core/calibrate/phase_order.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.calibrate.phase_order import phase_contacts, phase_order_advice
from napari_gencal.core.io import read_labels
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.phases import PhaseMap, to_indices
from tests.conftest import shared_data


def _brute_contacts(s: np.ndarray, k: int) -> np.ndarray:
    n = np.zeros((k, k))
    pairs = 0
    for img in s:
        h, w = img.shape
        for y in range(h):
            for x in range(w):
                for dy, dx in ((0, 1), (1, 0)):
                    if y + dy < h and x + dx < w:
                        pairs += 1
                        a, b = img[y, x], img[y + dy, x + dx]
                        if a != b:
                            n[a, b] += 1
                            n[b, a] += 1
    phi = np.bincount(s.ravel(), minlength=k) / s.size
    c = n / pairs / (2 * np.outer(phi, phi))
    np.fill_diagonal(c, 0)
    return c


def test_contacts_equal_a_loop():
    s = np.random.default_rng(0).integers(0, 3, (2, 7, 9))
    np.testing.assert_allclose(phase_contacts(s, 3), _brute_contacts(s, 3), rtol=1e-12)
    # independent pixels: every relative contact ≈ 1 (binomial SE of ~2·10^4 pairs: 4 SE ≈ 0.05)
    big = np.random.default_rng(1).integers(0, 3, (1, 100, 100))
    c = phase_contacts(big, 3)
    assert np.all(np.abs(c[~np.eye(3, dtype=bool)] - 1) < 0.06)


def test_stripes_a_m_b_m_advise_m_second():
    # A | M | B | M | A …: A and B never touch, so M must be second.
    row = np.repeat([0, 2, 1, 2] * 8, 4)
    s = np.tile(row, (1, 40, 1))
    msg = phase_order_advice(s, (10, 20, 30))  # order A, B, M
    assert msg is not None and "30 should be second" in msg and "--phases 10,30,20" in msg
    m_second = np.array([0, 2, 1])[s]  # the same image in the order A, M, B
    assert phase_order_advice(m_second, (10, 30, 20)) is None
    assert phase_order_advice(np.minimum(s, 1), (1, 2)) is None  # two phases: nothing to say


def test_real_data_advice():
    # electrode.tiff: NMC (85) and pore (0) touch least; binder (170) coats NMC. Measured
    # (docs/calibration.md): 85,170,0 meets S_V within 5 %, 85,0,170 misses pore S_V by 24 %.
    img = read_labels(shared_data("electrode.tiff"))
    for order, expect in [((85, 0, 170), "--phases 85,170,0"), ((0, 85, 170), "170 should be")]:
        idx = to_indices(img.data[::16], PhaseMap(order))
        msg = phase_order_advice(idx, order)
        assert msg is not None and expect in msg
    assert (
        phase_order_advice(to_indices(img.data[::16], PhaseMap((85, 170, 0))), (85, 170, 0)) is None
    )
    # SOFC: the three pairs touch about equally; no advice for any order.
    sofc = read_labels(shared_data("SOFC_hr_input.tif"))
    for order in [(0, 1, 2), (1, 0, 2), (2, 1, 0)]:
        assert phase_order_advice(to_indices(sofc.data, PhaseMap(order))[None], order) is None


def test_calibration_warns_about_the_phase_order():
    from napari_gencal.core.calibrate import CalibrationConfig
    from napari_gencal.core.calibrate.loop import Calibration, CalibrationWarning

    row = np.repeat([0, 2, 1, 2] * 4, 4)
    s = np.tile(row, (2, 64, 1)).astype(np.uint8)
    cfg = CalibrationConfig.preset(
        "minutes", window=64, init_scale_search=False, device="cpu", max_epochs=1
    )
    with pytest.warns(CalibrationWarning, match="phase order"):
        Calibration(s, PhaseMap((0, 1, 2)), cfg)


def test_cli_chooses_the_order_and_says_why_in_one_line(tmp_path, capsys):
    from napari_gencal.cli import main

    row = np.repeat([0, 2, 1, 2] * 4, 4)
    img = tmp_path / "stripes.npy"
    np.save(img, np.tile(row, (64, 1)).astype(np.uint8))
    args = ["calibrate", str(img), "--out", str(tmp_path / "m.json"), "--window", "32"]
    args += ["--batch", "1", "--max-epochs", "1", "--quiet", "--device", "cpu"]
    for s in ("pretrain_model_steps=1", "pretrain_disc_steps=1", "steps_per_epoch=1", "m=3"):
        args += ["--set", s]
    args += ["--set", "r_max=5", "--set", "disc_width=8", "--set", "init_scale_search=false"]
    assert main(args) == 0
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if "phase order" in ln]
    # 0 and 1 never touch: they go to the ends, 2 between them; no advice to rerun, a choice.
    assert len(line) == 1 and line[0].startswith("phase order: ")
    assert ", 2, " in line[0].split(" as the model")[0] and "short trial fits chose" in line[0]
    model = ExcursionModel.load(tmp_path / "m.json")
    order = model.metadata["phase_order"]["model_order_labels"]
    assert order[1] == 2 and set(order) == {0, 1, 2}
    assert tuple(model.phase_map.labels) == tuple(order)  # generated labels stay the user's


def test_candidates_put_the_least_touching_pair_at_the_ends():
    from napari_gencal.core.calibrate.phase_order import candidate_orders

    # A | M | B | M …: A (0) and B (1) never touch (contact 0): M (2) goes into the middle.
    s = np.tile(np.repeat([0, 2, 1, 2] * 8, 4), (1, 40, 1))
    cands, text = candidate_orders(s, 3)
    assert cands == [(0, 2, 1), (1, 2, 0)] and "0-1 0.00" in text
    # Independent pixels: every pair touches alike; still the least-touching pair's two ends.
    noise = np.random.default_rng(0).integers(0, 3, (1, 200, 200))
    cands, _ = candidate_orders(noise, 3)
    assert len(cands) == 2 and cands[0][1] == cands[1][1] and cands[0] == cands[1][::-1]
    assert candidate_orders(np.minimum(s, 1), 2)[0] == [(0, 1)]


@pytest.mark.parametrize(
    "width, s1, s2, a, f1, f2",
    [(1.5, 0.8, 1.2, 0.3, 0.42, 0.51), (1.5, 1.0, 1.0, 0.8, 0.2, 0.3)],
)
def test_trial_fits_recover_the_order_of_a_known_model(width, s1, s2, a, f1, f2):
    # Sections of a model whose phase 1, 2, 3 are the labels 10, 20, 30, named in a shuffled
    # order: the pipeline must give the model back its own order (no statistic of the contacts
    # alone tells which end is phase 1).
    from napari_gencal.core.calibrate import CalibrationConfig, prepare_data
    from napari_gencal.core.calibrate.pipeline import CalibrationPipeline
    from napari_gencal.core.generate import generate_sections
    from napari_gencal.core.model import thresholds_for_fractions

    pm = PhaseMap((10, 20, 30))
    fr = [f1, f2, 1 - f1 - f2]
    truth = ExcursionModel.default("high", m=int(3 * width), fractions=fr, width=width,
                                   phase_map=pm).copy(sigma1=s1, sigma2=s2, a=a)  # fmt: skip
    sec = generate_sections(thresholds_for_fractions(truth, fr), 4, 192, seed=1, device="cpu")
    data = prepare_data(sec, "30,10,20")
    from napari_gencal.core.calibrate.trials import run_trials

    cfg = CalibrationConfig.preset("minutes", time_limit=None, device="cpu", construction="paper",
                                   trial_steps=125)
    pipe = CalibrationPipeline(data, cfg, check=False)
    for _ in run_trials(pipe):
        pass
    assert pipe.model_phase_map.labels == (10, 20, 30), pipe.order.reason
    assert len(pipe.order.trials) >= 2
