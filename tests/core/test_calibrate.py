"""Calibration engine: records, cancellation, determinism, checkpoints, failures, bad input.

Every run here is tiny (window 32, batch 2–4, a handful of steps) so the file stays fast on 2 cores;
statistical recovery is in test_calibrate_recovery.py.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from napari_gencal.core.calibrate import CalibrationConfig, calibrate
from napari_gencal.core.calibrate import _backend as be
from napari_gencal.core.calibrate.checkpoint import load_checkpoint
from napari_gencal.core.calibrate.discriminator import Discriminator, RealSampler
from napari_gencal.core.calibrate.loop import Calibration, CalibrationWarning, check_stationarity
from napari_gencal.core.generate import generate, generate_sections
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.phases import PhaseMap, to_indices

PM3 = PhaseMap((0, 1, 2))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def truth() -> ExcursionModel:
    return ExcursionModel.default(
        "high", m=5, n_phases=3, fractions=[0.4, 0.35, 0.25], width=2.0, phase_map=PM3
    )


@pytest.fixture(scope="module")
def data(truth) -> np.ndarray:
    return generate_sections(truth, 3, 64, seed=5, device="cpu")


def tiny(**changes) -> CalibrationConfig:
    base = dict(
        window=32,
        batch=2,
        m=4,
        r_max=6,
        disc_width=8,
        pretrain_model_steps=3,
        pretrain_disc_steps=2,
        steps_per_epoch=2,
        max_epochs=2,
        early_stop_start=1,
        patience=50,
        eval_sections=2,
        eval_size=32,
        init_scale_search=False,
        trial_steps=20,
        device="cpu",
        seed=3,
    )
    base.update(changes)
    return CalibrationConfig(**base)


def params(cal: Calibration) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in cal.module.state_dict().items()}


# ---------------------------------------------------------------------- config


def test_config_validation_and_presets():
    with pytest.raises(ValueError, match="algorithm"):
        CalibrationConfig(algorithm=4)
    with pytest.raises(ValueError, match="power of two"):
        CalibrationConfig(window=48)
    with pytest.raises(ValueError, match="unknown calibration settings"):
        CalibrationConfig.preset("quick", not_a_setting=1)
    with pytest.raises(ValueError, match="unknown preset"):
        CalibrationConfig.preset("slow")
    q = CalibrationConfig.preset("minutes")
    assert CalibrationConfig.preset("quick") == q  # the earlier name of the same budget
    p = CalibrationConfig.preset("paper")
    assert q.time_limit == 300 and p.patience == 500 and p.early_stop_start == 101
    assert q.straight_through and not CalibrationConfig().straight_through
    # Budgets, not lengths: no preset but the paper's fixes a window, m or r_max.
    for name in ("minutes", "default"):
        c = CalibrationConfig.preset(name)
        assert c.window is None and c.m is None and c.r_max is None and c.working_factor is None
    # patience=None: a time-limited run uses its whole budget; without one, 500 epochs.
    assert q.patience is None
    assert q.patience_epochs(epoch_seconds=2.0, time_limit=300.0) == math.inf
    assert q.patience_epochs(epoch_seconds=2.0, time_limit=None) == 500
    assert q.replace(patience=40).patience_epochs(2.0, 300.0) == 40
    with pytest.raises(ValueError, match="working_factor"):
        CalibrationConfig(working_factor=0)
    d = CalibrationConfig().to_dict()
    assert CalibrationConfig.from_dict(json.loads(json.dumps(d))) == CalibrationConfig()
    assert d["batch"] == 32 and d["betas"] == [0.5, 0.999] and d["skip_threshold"] == 0.4


# ---------------------------------------------------------------------- discriminator


def test_discriminator_architecture_and_real_sampler():
    d = Discriminator(3, 128, 64)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    # method.md §5: 3→64→128→256→512 then 512→512 while the map is larger than 4×4.
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    out = d(torch.rand(2, 3, 128, 128))
    assert out.shape == (2,) and torch.all((out > 0) & (out < 1))
    sections = np.zeros((2, 40, 50), np.uint8)
    sections[1, :, 25:] = 2
    s = RealSampler(sections, 3, 32, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    b = s.sample(16, g)
    assert b.shape == (16, 3, 32, 32)
    assert torch.allclose(b.sum(1), torch.ones(16, 32, 32))  # one-hot
    # The symmetries turn the vertical boundary of section 1 into horizontal ones too.
    has2 = b[:, 2].sum((1, 2)) > 0
    rows = b[has2, 2].amax(2).sum(1)  # rows touched by phase 2
    assert (rows < 32).any() or has2.sum() == 0


# ---------------------------------------------------------------------- the loop


def test_records_are_well_formed(data):
    cal = Calibration(data, PM3, tiny())
    recs = list(cal.run())
    phases = [r.phase for r in recs]
    assert phases[:3] == ["pretrain-model"] * 3
    assert phases[3:5] == ["pretrain-disc"] * 2
    assert phases[5:-1] == ["train"] * 4 and phases[-1] == "done"
    assert [r.step for r in recs[:-1]] == list(range(1, 10))
    assert recs[-1].done and recs[-1].stop_reason == "max_epochs"
    for r in recs[:-1]:
        assert set(r.losses) == {"tppf", "adv", "disc", "total"}
        assert r.elapsed >= 0 and r.remaining is not None and r.remaining >= 0
        assert r.total_steps == 9 and 0 < r.fraction <= 1
    train = [r for r in recs if r.phase == "train"]
    assert all(math.isfinite(r.losses[k]) for r in train for k in ("tppf", "adv", "disc", "total"))
    ends = [r for r in train if r.score is not None]
    assert [r.epoch for r in ends] == [1, 2]
    assert ends[0].new_best and ends[0].best_score == ends[0].score
    desc = recs[-1].descriptors
    assert len(desc["volume_fraction"]) == 3 and len(desc["data_specific_surface_area"]) == 3
    assert isinstance(recs[-1].summary(), str)


def test_metadata_of_best_model(data, tmp_path):
    cal = Calibration(data, PM3, tiny(), voxel_size=0.5, anisotropy=1.3)
    for _ in cal.run():
        pass
    model = cal.best_model
    assert model.phase_map == PM3 and model.anisotropy == pytest.approx(1.3)
    assert model.voxel_size == (0.5, 0.5, 0.5) and model.m == 4 and model.n_chi2 == 3
    meta = model.metadata
    assert meta["data"]["sha256"] == cal.data_sha256 and len(cal.data_sha256) == 64
    assert meta["calibration"]["settings"]["seed"] == 3
    assert meta["calibration"]["r_max"] == 6 and meta["calibration"]["algorithm"] == 3
    assert set(meta["versions"]) >= {"napari_gencal", "torch", "numpy", "python"}
    assert meta["loss_history"]["steps"] == 9 and "tppf" in meta["loss_history"]
    assert meta["descriptors"]["score"] >= 0
    path = model.save(tmp_path / "m.json")
    again = ExcursionModel.load(path)
    assert again.metadata == json.loads(json.dumps(meta))
    # Loading it and generating with the same seed reproduces the volume bit for bit.
    a = generate(again, (8, 16, 16), seed=1, device="cpu")
    b = generate(model, (8, 16, 16), seed=1, device="cpu")
    assert np.array_equal(a, b)


def test_cancel_keeps_a_loadable_best_model(data, tmp_path):
    cal = Calibration(data, PM3, tiny(max_epochs=50))
    gen = cal.run()
    for rec in gen:
        if rec.phase == "train" and rec.epoch == 2:
            break
    gen.close()
    assert cal.stop_reason == "cancelled"
    model = cal.best_model
    assert cal.best_score is not None  # epoch 1 was evaluated
    path = model.save(tmp_path / "best.json")
    vol = generate(ExcursionModel.load(path), (8, 16, 16), seed=0, device="cpu")
    assert vol.shape == (8, 16, 16) and set(np.unique(vol)) <= {0, 1, 2}
    # cancel() stops at the next step with a final record.
    cal2 = Calibration(data, PM3, tiny(max_epochs=50))
    recs = []
    for rec in cal2.run():
        recs.append(rec)
        if rec.step == 2:
            cal2.cancel()
    assert recs[-1].done and recs[-1].stop_reason == "cancelled" and recs[-1].step == 2


def test_same_seed_same_parameters(data):
    a = Calibration(data, PM3, tiny())
    b = Calibration(data, PM3, tiny())
    list(a.run()), list(b.run())
    pa, pb = params(a), params(b)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    c = Calibration(data, PM3, tiny(seed=4))
    list(c.run())
    assert not all(torch.equal(pa[k], params(c)[k]) for k in pa)


def test_checkpoint_resume_continues_identically(data, tmp_path):
    ck = tmp_path / "run.ckpt"
    full = Calibration(data, PM3, tiny(max_epochs=3))
    list(full.run())
    part = Calibration(data, PM3, tiny(max_epochs=3, checkpoint=str(ck), checkpoint_every=1))
    gen = part.run()
    for rec in gen:
        if rec.step == 7:  # pre-training (5) + epoch 1 (2): a checkpoint was just written
            break
    gen.close()
    state = load_checkpoint(ck)
    assert state["step"] == 7
    resumed = Calibration(data, PM3, tiny(max_epochs=3), resume=str(ck))
    assert resumed.step == 7
    recs = list(resumed.run())
    assert recs[-1].stop_reason == "max_epochs" and resumed.step == full.step
    pf, pr = params(full), params(resumed)
    assert all(torch.equal(pf[k], pr[k]) for k in pf)
    assert resumed.best_score == full.best_score
    with pytest.raises(ValueError, match="other data"):
        Calibration(data[:2], PM3, tiny(), resume=str(ck))


def test_nan_loss_stops_with_a_message_and_keeps_best(data, monkeypatch):
    cal = Calibration(data, PM3, tiny(max_epochs=5))
    real = be.tppf_loss
    calls = {"n": 0}

    def poisoned(*args, **kw):
        calls["n"] += 1
        out = real(*args, **kw)
        return out * float("nan") if cal.step >= 8 else out

    monkeypatch.setattr(be, "tppf_loss", poisoned)
    recs = list(cal.run())
    last = recs[-1]
    assert last.done and "non-finite loss" in last.stop_reason and last.step == 8
    assert cal.best_score is not None  # epoch 1 ended at step 7
    model = cal.best_model
    assert all(np.all(np.isfinite(model.kernels[n])) for n in model.kernels)
    model.validate()


def test_skip_rule(data):
    # Threshold above any possible loss: every adversarial-phase discriminator update is skipped.
    cal = Calibration(data, PM3, tiny(skip_threshold=1e9))
    before = None
    for rec in cal.run():
        if rec.phase == "pretrain-disc":
            before = {k: v.clone() for k, v in cal.disc.state_dict().items()}
        if rec.phase == "train":
            assert rec.disc_skipped
    after = cal.disc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # No threshold: the discriminator is trained in every step.
    cal = Calibration(data, PM3, tiny(skip_threshold=None))
    recs = list(cal.run())
    assert not any(r.disc_skipped for r in recs)
    assert not all(torch.equal(before[k], cal.disc.state_dict()[k]) for k in before)


@pytest.mark.parametrize("algorithm", [1, 2])
def test_algorithms_1_and_2_use_their_losses(data, algorithm):
    cal = Calibration(data, PM3, tiny(algorithm=algorithm))
    recs = list(cal.run())
    assert {r.phase for r in recs[:-1]} == {"train"}  # no pre-training outside Algorithm 3
    r = recs[0]
    if algorithm == 1:
        assert cal.disc is None and math.isnan(r.losses["adv"]) and math.isfinite(r.losses["tppf"])
    else:
        assert math.isnan(r.losses["tppf"]) and math.isfinite(r.losses["adv"])
        assert r.losses["total"] == r.losses["adv"]


def test_gamma_is_balanced_at_first_adversarial_step(data):
    cal = Calibration(data, PM3, tiny())
    for rec in cal.run():
        if rec.phase == "train":
            # total = adv + γ·tppf with γ·tppf = adv at this first step.
            assert rec.losses["total"] == pytest.approx(2 * rec.losses["adv"], rel=1e-5)
            break
    cal2 = Calibration(data, PM3, tiny(gamma=0.0))
    for rec in cal2.run():
        if rec.phase == "train":
            assert rec.losses["total"] == pytest.approx(rec.losses["adv"], rel=1e-6)
            break


def test_early_stopping_after_patience(data):
    cal = Calibration(data, PM3, tiny(max_epochs=40, patience=1, early_stop_start=1))
    recs = list(cal.run())
    assert recs[-1].stop_reason == "early_stopping"
    assert cal.epochs_since_best == 1 and recs[-1].epoch < 40


def test_two_phase_reduction(truth):
    two = truth.copy(n_phases=2, phase_map=PhaseMap((0, 1)))
    sections = generate_sections(two, 2, 64, seed=1, device="cpu")
    cal = Calibration(sections, PhaseMap((0, 1)), tiny())
    recs = list(cal.run())
    assert recs[-1].stop_reason == "max_epochs"
    model = cal.best_model
    assert model.n_phases == 2 and len(recs[-1].descriptors["volume_fraction"]) == 2


# ---------------------------------------------------------------------- bad input


def test_bad_input_messages(data):
    with pytest.raises(ValueError, match="do not occur"):
        Calibration(np.where(data == 2, 1, data).astype(np.uint8), PM3, tiny())
    with pytest.raises(ValueError, match="at least 32"):
        Calibration(data[:, :20, :20], PM3, tiny())
    with pytest.raises(ValueError, match="phase indices"):
        Calibration(data + 5, PM3, tiny())
    with pytest.raises(ValueError, match="two or three"):
        Calibration(data, PhaseMap((0, 1, 2, 3)), tiny())
    with pytest.warns(CalibrationWarning, match="does not fit"):
        cal = Calibration(data[:, :40, :40], PM3, tiny(window=64))
    assert cal.window == 32


def test_non_stationary_data_warns():
    rng = np.random.default_rng(0)
    h = w = 64
    # A graded layer: phase 0 from 10 % at the top to 80 % at the bottom.
    p0 = np.linspace(0.1, 0.8, h)[:, None] * np.ones((1, w))
    u = rng.random((h, w))
    img = np.where(u < p0, 0, np.where(u < p0 + (1 - p0) / 2, 1, 2)).astype(np.uint8)
    msgs = check_stationarity(img[None], 3)
    assert any("phase 0" in m and "along y" in m for m in msgs)
    with pytest.warns(CalibrationWarning, match="stationary"):
        Calibration(img, PM3, tiny())
    flat = np.where(u < 0.4, 0, np.where(u < 0.7, 1, 2)).astype(np.uint8)
    assert check_stationarity(flat[None], 3) == []


def test_calibrate_convenience_with_labels_and_callback(data):
    labels = np.choose(data[0], [10, 20, 30]).astype(np.uint8)
    seen = []

    def cb(rec):
        seen.append(rec.step)
        return rec.step < 4  # False at step 4 cancels

    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        model = calibrate(labels, phases="10,20,30", config=tiny(max_epochs=10), progress=cb)
    assert model.phase_map.labels == (10, 20, 30)
    assert seen[-1] == 4 and model.metadata["calibration"]["stop_reason"] == "cancelled"


def test_model_both_runs_high_then_low(data):
    cal = Calibration(data, PM3, tiny(model="both"))
    recs = list(cal.run())
    stages = [r.stage for r in recs]
    assert stages[0] == "high" and stages[-1] == "low" and recs[-1].stop_reason == "max_epochs"
    assert [r.phase for r in recs if r.stage == "low"][0] == "pretrain-model"
    assert cal.models["high"].kind == "high" and cal.models["low"].kind == "low"
    low = cal.best_model
    assert low.kind == "low" and "reduction" in low.metadata
    assert low.metadata["calibration"]["stage"] == "low"


def test_low_parametric_gradients_are_finite_for_small_exponents():
    # (r/a)^α with α < 1 has an infinite slope at r = 0; the calibration module must still give
    # finite gradients (and the same kernel values).
    from napari_gencal.core.covariance import DEFAULT_FAMILY

    params = dict(zip(DEFAULT_FAMILY.param_names, DEFAULT_FAMILY.defaults, strict=True))
    params.update(alpha1=0.5, alpha2=0.3, alpha4=0.7)
    low = ExcursionModel.default("low", m=4, fractions=[0.4, 0.35, 0.25]).copy(
        kernels={n: dict(params) for n in ("X1", "X2", "eps_X", "eps_Y", "eps_Z")}
    )
    module = be.module_from_model(low, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    be.sample_sections(module, 2, 32, g)[:, 0].mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in module.cov.values())
    ref = low.kernel3d("X1", dtype=torch.float32)
    assert torch.allclose(module.kernels(["X1"])["X1"].detach(), ref, atol=1e-5)


def test_straight_through_sections_are_one_hot_with_sigmoid_gradients(truth):
    module = be.module_from_model(truth, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    x = be.sample_sections_straight_through(module, 2, 32, g)
    assert torch.equal(x.detach().sum(1), torch.ones(2, 32, 32))
    assert set(torch.unique(x.detach()).tolist()) <= {0.0, 1.0}
    x[:, 1].mean().backward()
    assert module.lambda2.grad is not None and module.lambda2.grad != 0


def test_kernel_radius_defaults_to_r_max(data):
    # m = r_max (≥ 4, ≤ m_cap) so that kernels have room to fade out (see the next test).
    assert Calibration(data, PM3, tiny(m=None, r_max=6)).m == 6
    assert Calibration(data, PM3, tiny(m=None, r_max=6, m_cap=5)).m == 5
    assert Calibration(data, PM3, tiny(m=None, r_max=2)).m == 4
    assert Calibration(data, PM3, tiny(m=7, r_max=6)).m == 7


def test_a_kernel_cut_before_it_fades_gives_rough_sections():
    # Why m = r_max: the same Gaussian kernel (ℓ = 3) cut at m = 6, where it is still 0.135 of its
    # peak, vs at m = 12, where it has faded. Over seeds 0..5 the S_V of phase 1 (4 sections of
    # 128²) was 0.219 ± 0.0035 (m = 6) vs 0.191 ± 0.0029 (m = 12): +15 %, ~6 sd of the difference
    # of two single estimates. Asserting +8 % leaves ~3 sd of margin.
    from napari_gencal.core.model import thresholds_for_fractions

    pm2 = PhaseMap((0, 1))
    sv = {}
    for m in (6, 12):
        theta = np.exp(-0.5 * (np.arange(m + 1) / 3.0) ** 2).tolist()
        base = ExcursionModel.default("high", m=m, n_phases=2, fractions=[0.4, 0.6], phase_map=pm2)
        model = base.copy(kernels={n: theta for n in base.kernels})
        model = thresholds_for_fractions(model, [0.4, 0.6])
        labels = generate_sections(model, 4, 128, seed=0, device="cpu")
        sv[m] = be.surface_areas(to_indices(labels, pm2), 2)[0]
    assert sv[6] > 1.08 * sv[12]


def test_kept_parameters_have_the_data_fractions(data):
    from napari_gencal.core.model import sample_marginals

    cal = Calibration(data, PM3, tiny())
    for _ in cal.run():
        pass
    before = float(cal.module.lambda1.detach())
    model = cal.best_model
    assert float(cal.module.lambda1.detach()) == before  # the training parameters are not touched
    z1, z2 = sample_marginals(model, 400_000, seed=9)
    vf = [np.mean(z1 >= model.lambda1), np.mean((z1 < model.lambda1) & (z2 >= model.lambda2))]
    # Thresholds from 2·10⁵ marginal samples, checked with 4·10⁵ others: sd of the difference
    # ≈ sqrt(0.24 (1/2e5 + 1/4e5)) ≈ 0.0013; 0.005 is ~4 sd.
    assert vf == pytest.approx(cal.data_fractions[:2], abs=0.005)
    assert model.metadata["descriptors"]["score"] == pytest.approx(cal.best_score)
    off = Calibration(data, PM3, tiny(match_fractions=False))
    for _ in off.run():
        pass
    assert off.best_model.lambda1 == pytest.approx(float(off.best_state["lambda1"]))


def test_an_initial_model_is_where_the_run_starts(data):
    start = ExcursionModel.default(
        "high", m=5, n_phases=3, fractions=[0.4, 0.35, 0.25], width=1.3, phase_map=PM3
    ).copy(sigma1=0.7, a=0.2)
    cal = Calibration(data, PM3, tiny(m=5, match_fractions=False), init_model=start)
    now = cal.module.to_model()
    for name in start.kernels:
        assert np.allclose(now.kernels[name], start.kernels[name], rtol=1e-6)
    assert now.sigma1 == pytest.approx(0.7, rel=1e-6) and now.a == pytest.approx(0.2, rel=1e-5)
    with pytest.raises(ValueError, match="m = 5"):
        Calibration(data, PM3, tiny(m=5), init_model=start.copy(m=4, kernels={
            n: v[:5] for n, v in start.kernels.items()}))  # fmt: skip
    with pytest.raises(ValueError, match="differ"):
        Calibration(data, PM3, tiny(m=5), init_model=start.copy(phase_map=PhaseMap((2, 1, 0))))
