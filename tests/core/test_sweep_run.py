"""Sweeps on Dask: determinism, resume, failing points, lost workers, bad input (core/sweep)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from napari_gencal.core.model import ExcursionModel, thresholds_for_fractions
from napari_gencal.core.phases import PhaseMap
from napari_gencal.core.sweep import SweepSpec, grid, load_table, run_sweep
from napari_gencal.core.sweep.design import latin_hypercube, realization_seed, sobol
from napari_gencal.core.sweep.relations import fit_relation, sensitivity
from napari_gencal.core.sweep.run import connect

distributed = pytest.importorskip("distributed")
PM = PhaseMap((0, 1, 2))
FR = [0.45, 0.35, 0.20]
LIGHT = ("volume_fraction", "specific_surface_area", "mean_chord_length")


@pytest.fixture(scope="module")
def model() -> dict:
    m = ExcursionModel.default("high", m=3, fractions=FR, width=1.2, phase_map=PM)
    return thresholds_for_fractions(m, FR).to_dict()


@pytest.fixture(scope="module")
def client():
    """An in-process Dask cluster (threads): the real scheduler, without process start-up."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                           dashboard_address=":0")  # fmt: skip
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def spec(model, values=(0.3, 0.45), **kw) -> SweepSpec:
    base = dict(realizations=2, shape=(24, 24, 24), seed=5, measures=LIGHT, directions=("z",))
    return SweepSpec(model, grid({"vf:0": list(values)}), **{**base, **kw})


def numeric(df):
    return df.drop(columns=[c for c in df.columns if c.startswith("t_")]).select_dtypes("number")


def test_seeds_and_results_are_a_function_of_the_spec(model, client, tmp_path):
    assert realization_seed(5, 1, 0) == realization_seed(5, 1, 0) != realization_seed(5, 0, 1)
    a = run_sweep(spec(model), tmp_path / "a", client=client)
    b = run_sweep(spec(model), tmp_path / "b", client=client)
    assert len(a) == 4 and list(a["point"]) == [0, 0, 1, 1]
    assert (a["error"] == "").all()
    np.testing.assert_array_equal(numeric(a).to_numpy(), numeric(b).to_numpy())
    # the knob did what it says: phase 0's volume fraction follows vf:0 (24³: sd ≈ 0.03)
    means = a.groupby("point")["volume_fraction[0]"].mean().to_numpy()
    assert means == pytest.approx([0.30, 0.45], abs=0.06)
    for name in ("table.csv", "table.parquet", "summary.csv", "spec.json"):
        assert (tmp_path / "a" / name).is_file()
    meta = json.loads((tmp_path / "a" / "spec.json").read_text())
    assert meta["seeds"]["1,0"] == realization_seed(5, 1, 0) and "versions" in meta


def test_an_interrupted_sweep_resumes_with_only_the_missing_rows(model, client, tmp_path):
    out = tmp_path / "s"
    seen = []

    def stop_after_two(done, total, row):
        seen.append((row["point"], row["realization"]))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec(model), out, client=client, progress=stop_after_two)
    first = {(r["point"], r["realization"]) for r in load_table(out).to_dict("records")}
    assert first == set(seen) and len(first) == 2
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "rows").iterdir()}
    more = []
    with pytest.raises(ValueError, match="resume=True"):
        run_sweep(spec(model), out, client=client)  # no silent overwrite
    def note(done, total, row):
        more.append((row["point"], row["realization"]))

    table = run_sweep(spec(model), out, client=client, resume=True, progress=note)
    assert len(more) == 2 and not set(more) & first  # only the missing ones ran
    assert {p.name: p.stat().st_mtime_ns for p in (out / "rows").iterdir() if p.name in stamps} \
        == stamps  # fmt: skip
    assert len(table) == 4 and table[["point", "realization"]].duplicated().sum() == 0
    with pytest.raises(ValueError, match="another specification"):
        run_sweep(spec(model, seed=6), out, client=client, resume=True)


def test_a_failing_point_is_recorded_and_the_others_go_on(model, client, tmp_path):
    # vf:0 = 0.99 with vf:1 = 0.5 leaves no room for phase 2: that point raises in the task.
    s = SweepSpec(model, grid({"vf:0": [0.3, 0.99], "vf:1": [0.5]}), 1, (24, 24, 24), 1, LIGHT,
                  ("z",))  # fmt: skip
    table = run_sweep(s, tmp_path / "f", client=client)
    errs = table.set_index("point")["error"]
    assert errs[0] == "" and "leave no room" in errs[1]
    assert np.isfinite(table.loc[table.point == 0, "volume_fraction[0]"]).all()


def test_bad_input_is_refused_before_anything_starts(model, tmp_path):
    with pytest.raises(ValueError, match="unknown knob 'porosity'.*vf:0"):
        SweepSpec(model, grid({"porosity": [0.3]}))
    with pytest.raises(ValueError, match=r"outside its domain \[0.1, 10.0\]"):
        SweepSpec(model, grid({"anisotropy": [12.0]}))
    with pytest.raises(ValueError, match="does not answer"):
        connect("tcp://127.0.0.1:9", timeout=1)
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, memory_limit="64MB",
                      dashboard_address=":0") as cl, Client(cl) as c:  # fmt: skip
        with pytest.raises(ValueError, match=r"worker may use 0\.1 GiB"):
            run_sweep(spec(model, shape=(160, 160, 160)), tmp_path / "m", client=c)
    assert not (tmp_path / "m" / "rows").exists()


def test_relations_and_sensitivity_from_a_sweep(model, client, tmp_path):
    d = sobol({"vf:0": (0.3, 0.5), "length_scale": (0.8, 1.2)}, 4, seed=1)
    s = SweepSpec(model, d, 1, (24, 24, 24), 2, LIGHT, ("z",))
    table = run_sweep(s, tmp_path / "so", client=client)
    idx = sensitivity(d, table, "volume_fraction[0]")
    # phase 0's fraction is set by vf:0 alone: nearly all of its variance
    assert idx["ST"]["vf:0"] > 0.8 and idx["ST"]["length_scale"] < 0.2
    with pytest.raises(ValueError, match="effective_diffusivity"):
        fit_relation(table, 0, "z")  # no transport measured
    lhs = latin_hypercube({"vf:0": (0.3, 0.5)}, 3, seed=0)
    with pytest.raises(ValueError, match="Sobol' or Morris"):
        sensitivity(lhs, table, "volume_fraction[0]")


@pytest.mark.slow
def test_a_multi_process_cluster_survives_a_lost_worker(model, tmp_path):
    # Two worker processes; one is killed after the first row: the sweep still finishes, every
    # (point, realization) exactly once, none recorded twice or lost.
    from distributed import Client, LocalCluster

    s = spec(model, values=(0.3, 0.35, 0.4, 0.45), shape=(32, 32, 32))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cl, Client(cl) as c:  # fmt: skip
        killed = []

        def kill_one(done, total, row):
            if not killed:  # SIGKILL one worker process: its running task is lost with it
                import signal

                addr = sorted(c.scheduler_info()["workers"])[0]
                pid = c.run(os.getpid, workers=[addr])[addr]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        table = run_sweep(s, tmp_path / "k", client=c, progress=kill_one)
    assert killed
    assert len(table) == 8 and table[["point", "realization"]].duplicated().sum() == 0
    assert (table["error"] == "").all(), table["error"].tolist()
