"""Fusion with a low-resolution scan: mapping, scale, the conditional sampler (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.fuse import (
    FusionSettings,
    block_fractions,
    downsample_majority,
    fuse,
    fuse_draws,
    parse_mapping,
    resolve_scale,
    scan_agreement,
    upsample_nearest,
)
from napari_gencal.core.generate import generate
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.phases import PhaseMap


@pytest.fixture(scope="module")
def model() -> ExcursionModel:
    # Structures of a few voxels, so that a 4× scan of a small volume still has many blocks.
    return ExcursionModel.default(
        m=12, width=3.0, fractions=[0.4, 0.35, 0.25], phase_map=PhaseMap((10, 20, 30))
    )


@pytest.fixture(scope="module")
def truth(model) -> np.ndarray:
    """A realization of the model as the high-resolution truth (phase indices)."""
    return generate(model, (48, 48, 48), seed=99) // 10 - 1


# ------------------------------------------------------------------------ mapping and scale
def test_mapping_identity_and_merged():
    scan = np.array([[[10, 20], [30, 10]]])
    m = parse_mapping(None, scan, (10, 20, 30), 3)
    assert m.groups == ((0,), (1,), (2,))
    merged = parse_mapping("0=10+30,1=20", np.array([[[0, 1]]]), (10, 20, 30), 3)
    assert merged.scan_labels == (0, 1) and merged.groups == ((0, 2), (1,))
    np.testing.assert_array_equal(merged.matrix(3), [[1, 0, 1], [0, 1, 0]])
    assert parse_mapping({0: [10, 30], 1: 20}, np.array([[[0, 1]]]), (10, 20, 30), 3) == merged


@pytest.mark.parametrize(
    ("spec", "scan", "message"),
    [
        (None, [[[0, 1]]], "not model labels"),
        ("0=10+30,1=20", [[[0, 1, 2]]], "map to no phase"),
        ("0=10,1=20", [[[0, 1]]], "covered by no scan label"),
        ("0=10+20,1=20+30", [[[0, 1]]], "mapped from scan labels"),
        ("0=10+99,1=20+30", [[[0, 1]]], "not a model label"),
        ("0:10", [[[0]]], "no '='"),
    ],
)
def test_mapping_errors_name_the_problem(spec, scan, message):
    with pytest.raises(ValueError, match=message):
        parse_mapping(spec, np.array(scan), (10, 20, 30), 3)


def test_scale_from_and_against_voxel_sizes():
    assert resolve_scale(4) == (4, 4, 4)
    assert resolve_scale((2, 4, 4)) == (2, 4, 4)
    assert resolve_scale(None, (2.0, 2.0, 2.0), (0.5, 0.5, 0.5)) == (4, 4, 4)
    with pytest.raises(ValueError, match="--scale"):
        resolve_scale(None)
    with pytest.raises(ValueError, match="does not match the voxel sizes.*--scale 4 4 4"):
        resolve_scale(3, (2.0, 2.0, 2.0), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="not a whole number"):
        resolve_scale(None, (1.0, 1.0, 1.0), (0.3, 0.3, 0.3))


def test_block_statistics_brute_force():
    rng = np.random.default_rng(0)
    v = rng.integers(0, 3, size=(8, 6, 4)).astype(np.uint8)
    f = block_fractions(v, (2, 3, 2), 3)
    for i in range(3):
        for a, b, c in np.ndindex(4, 2, 2):
            blk = v[2 * a : 2 * a + 2, 3 * b : 3 * b + 3, 2 * c : 2 * c + 2]
            assert f[i, a, b, c] == pytest.approx((blk == i).mean())
    down = downsample_majority(v, (2, 3, 2), 3)
    assert np.all(f.max(0) == np.take_along_axis(f, down[None].astype(np.int64), 0)[0])
    up = upsample_nearest(down, (2, 3, 2))
    assert up.shape == v.shape and np.all(downsample_majority(up, (2, 3, 2), 3) == down)


# ------------------------------------------------------------------------ the sampler
def test_no_steps_is_the_unconditioned_realization(model):
    """Step 0 of fusion is generate() with the same seed (position-keyed noise, same law)."""
    scan = np.full((6, 6, 6), 10)
    res = fuse(model, scan, scale=2, seed=3, steps=0, precision="double", device="cpu")
    ref = generate(model, (12, 12, 12), seed=3, device="cpu")
    np.testing.assert_array_equal(res.labels, ref)
    # A shifted origin is the same place in one large realization.
    big = generate(model, (12, 16, 12), seed=3, device="cpu")
    part = fuse(model, np.full((6, 6, 6), 10), scale=2, seed=3, steps=0, precision="double",
                origin=(0, 4, 0), device="cpu")  # fmt: skip
    np.testing.assert_array_equal(part.labels, big[:, 4:, :])


def test_fused_volume_downsamples_to_the_scan(model, truth):
    scan_idx = downsample_majority(truth, (4, 4, 4), 3)
    scan = np.array([10, 20, 30])[scan_idx]
    free = fuse(model, scan, scale=4, seed=0, steps=0, device="cpu")
    res = fuse(model, scan, scale=4, seed=0, steps=40, device="cpu")
    assert res.labels.shape == (48, 48, 48)
    assert set(np.unique(res.labels)) <= {10, 20, 30}
    assert res.agreement == pytest.approx(
        scan_agreement(
            res.indices, scan_idx, (4, 4, 4), parse_mapping(None, scan, (10, 20, 30), 3), 3
        )
    )
    # An unconditioned draw agrees with the scan by chance only (about the majority's share).
    assert free.agreement < 0.6
    assert res.agreement >= 0.93
    # Closer to the truth than an unconditioned draw, voxel by voxel.
    acc = np.mean(res.indices == truth)
    assert acc > np.mean(free.indices == truth) + 0.25
    # The volume fractions stay those of the model (the scan is a draw of the same model).
    for i, target in enumerate((0.4, 0.35, 0.25)):
        assert abs(np.mean(res.indices == i) - target) < 0.04


def test_merged_mapping_keeps_all_phases(model, truth):
    """A solid-vs-rest scan (phases 1 and 3 merged) still gives three phases at full resolution."""
    groups = np.array([0, 1, 0])
    scan = downsample_majority(truth, (4, 4, 4), 3, groups)
    res = fuse(model, scan, scale=4, mapping="0=10+30,1=20", seed=1, steps=40, device="cpu")
    assert res.mapping == {"0": [10, 30], "1": [20]}
    assert res.agreement >= 0.93
    vf = [np.mean(res.indices == i) for i in range(3)]
    assert min(vf) > 0.15  # no phase vanished


def test_different_seeds_give_different_draws_and_probabilities(model, truth):
    scan = np.array([10, 20, 30])[downsample_majority(truth, (4, 4, 4), 3)]
    draws, prob = fuse_draws(model, scan, n_draws=2, scale=4, seed=5, steps=25, device="cpu")
    a, b = draws[0].indices, draws[1].indices
    assert 0.05 < np.mean(a != b) < 0.6
    assert prob.shape == (3, 48, 48, 48)
    np.testing.assert_allclose(prob.sum(0), 1.0, atol=1e-5)
    assert prob.min() >= 0 and prob.max() <= 1
    # Away from thresholds the probability is the fraction of draws (0, 1/2 or 1).
    frac = np.stack([(a == i).astype(float) + (b == i) for i in range(3)]) / 2
    assert np.mean(np.abs(prob - frac) < 0.05) > 0.9


def test_same_seed_reproduces(model):
    scan = np.full((4, 4, 4), 20)
    scan[:2] = 10
    r1 = fuse(model, scan, scale=3, seed=7, steps=5, device="cpu")
    r2 = fuse(model, scan, scale=3, seed=7, steps=5, device="cpu")
    np.testing.assert_array_equal(r1.labels, r2.labels)


def test_cancel_keeps_what_was_done(model):
    scan = np.full((4, 4, 4), 10)
    calls = []
    res = fuse(model, scan, scale=2, steps=10, cancel=lambda: len(calls) >= 2,
               progress=calls.append, device="cpu")  # fmt: skip
    assert res.cancelled and len(res.history) == 2
    assert res.labels.shape == (8, 8, 8)


def test_bad_input(model):
    with pytest.raises(ValueError, match="3D label volume"):
        fuse(model, np.zeros((4, 4), dtype=int) + 10, scale=2)
    with pytest.raises(ValueError, match="map to no phase|not model labels"):
        fuse(model, np.full((4, 4, 4), 5), scale=2)
    with pytest.raises(ValueError, match="--scale"):
        fuse(model, np.full((4, 4, 4), 10))
    with pytest.raises(ValueError, match="greyscale"):
        fuse(model, np.random.default_rng(0).random((4, 4, 4)) * 30, scale=2)
    with pytest.raises(ValueError, match="step_size"):
        fuse(model, np.full((4, 4, 4), 10), scale=2, step_size=0)


# ------------------------------------------------------------------------ chunks and memory
def test_chunked_start_equals_whole_and_chunked_fusion_holds(model, truth):
    from napari_gencal.core.fuse import fuse_chunked

    scan_idx = downsample_majority(truth, (4, 4, 4), 3)
    scan = np.array([10, 20, 30])[scan_idx]
    # Without steps, chunks reproduce the whole unconditioned realization exactly.
    st0 = FusionSettings(steps=0, precision="double")
    whole0 = fuse(model, scan, scale=4, seed=2, settings=st0, device="cpu").indices
    chunk0 = fuse_chunked(model, scan, scale=4, chunks=6, seed=2, settings=st0, device="cpu")
    np.testing.assert_array_equal(chunk0, whole0)
    # With steps: another draw of the same posterior, as faithful to the scan as the whole one.
    st = FusionSettings(steps=30)
    whole = fuse(model, scan, scale=4, seed=2, settings=st, device="cpu")
    done = []
    chunked = fuse_chunked(model, scan, scale=4, chunks=6, seed=2, settings=st, device="cpu",
                           progress=lambda d, n: done.append((d, n)))  # fmt: skip
    assert done[-1] == (8, 8)
    identity = parse_mapping(None, scan, (10, 20, 30), 3)
    agree = scan_agreement(chunked, scan_idx, (4, 4, 4), identity, 3)
    assert agree >= whole.agreement - 0.03
    assert np.mean(chunked == whole.indices) > 0.7


def test_chunked_on_dask(model):
    from distributed import Client

    from napari_gencal.core.fuse import fuse_chunked

    scan = np.full((8, 8, 8), 10)
    scan[:, :4] = 20
    st = FusionSettings(steps=0, precision="double")
    local = fuse_chunked(model, scan, scale=2, chunks=4, settings=st, device="cpu")
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as c:
        remote = fuse_chunked(model, scan, scale=2, chunks=4, settings=st, client=c)
    np.testing.assert_array_equal(remote, local)


def test_too_large_for_memory_is_refused_before_starting(model):
    from napari_gencal.core.fuse import check_memory

    with pytest.raises(ValueError, match="GiB available; fuse it in chunks"):
        check_memory(model, (64, 64, 64), (4, 4, 4), available=2**30)
    check_memory(model, (4, 4, 4), (2, 2, 2), available=2**30)


# ------------------------------------------------------------------------ front ends
def test_cli_and_api_fuse(model, truth, tmp_path, capsys):
    import tifffile

    from napari_gencal import api
    from napari_gencal.cli import main

    model_path = model.save(tmp_path / "m.json")
    scan = np.array([10, 20, 30])[downsample_majority(truth[:24, :24, :24], (4, 4, 4), 3)]
    tifffile.imwrite(tmp_path / "scan.tif", scan.astype(np.uint8))
    out, prob = tmp_path / "fused.tif", tmp_path / "prob.tif"
    argv = ["fuse", str(model_path), str(tmp_path / "scan.tif"), "--scale", "4", "--out",
            str(out), "--steps", "10", "--draws", "2", "--probability", str(prob)]  # fmt: skip
    assert main(argv) == 0
    assert "agreement with the scan" in capsys.readouterr().out
    fused = tifffile.imread(out)
    p = tifffile.imread(prob)
    assert fused.shape == (24, 24, 24) and p.shape == (3, 24, 24, 24)
    # The same work through the API gives the same volume.
    res = api.fuse(model_path, tmp_path / "scan.tif", 4, steps=10, draws=2)
    np.testing.assert_array_equal(res.labels, fused)
    np.testing.assert_allclose(res.probability, p)
    # Nothing is overwritten; bad input is one clear line.
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    tifffile.imwrite(tmp_path / "bad.tif", np.full((6, 6, 6), 7, dtype=np.uint8))
    assert main(["fuse", str(model_path), str(tmp_path / "bad.tif"), "--scale", "2",
                 "--out", str(tmp_path / "x.tif")]) == 2  # fmt: skip
    assert "--map" in capsys.readouterr().err
    # Chunked through the API: bounded memory, every chunk fused.
    ch = api.fuse(model, scan, 4, chunks=3, steps=10)
    assert ch.labels.shape == (24, 24, 24) and ch.agreement > 0.8


def _two_point(idx: np.ndarray, phase: int, lags=(1, 2, 4, 8)) -> np.ndarray:
    """P(x and x + r·e in ``phase``), averaged over the three axes (brute force)."""
    m = idx == phase
    out = []
    for r in lags:
        vals = [np.mean(m[r:] & m[:-r]), np.mean(m[:, r:] & m[:, :-r]),
                np.mean(m[:, :, r:] & m[:, :, :-r])]  # fmt: skip
        out.append(np.mean(vals))
    return np.array(out)


def test_conditioned_statistics_stay_the_models(model, truth):
    """Two-point probabilities of fused draws lie within the spread of unconditioned draws."""
    unc = np.stack([
        np.concatenate([_two_point(generate(model, (48, 48, 48), seed=s) // 10 - 1, i)
                        for i in range(3)])
        for s in range(200, 208)
    ])  # fmt: skip
    mean, sd = unc.mean(0), unc.std(0, ddof=1)
    scan = np.array([10, 20, 30])[downsample_majority(truth, (4, 4, 4), 3)]
    for seed in (0, 1):
        res = fuse(model, scan, scale=4, seed=seed, device="cpu")
        got = np.concatenate([_two_point(res.indices, i) for i in range(3)])
        z = (got - mean) / sd
        assert np.all(np.abs(z) < 4), np.round(z, 1)
