"""From twin to cell: interfaces against a Boolean truth, data vs twins as cells, speed, sweeps.

Sub-benchmarks (``python benchmarks/bench_cell.py NAME [...]``), one at a time on 2 cores; wrap
timed runs in ``flock /tmp/gencal-bench.lock``:

* ``interfaces`` — pair areas and TPB length of a three-phase Boolean model against its analytic
  expectation and against the same realization measured geometrically (tests/core/
  boolean_truth.py), at two resolutions; then ``electrode.tiff`` against a twin of the same
  shape (``--model``), per pair.
* ``cell`` — ``electrode.tiff`` (0 = electrolyte, 85 = NMC, 170 = carbon binder) and three twins
  of ``--model`` as cells (``api.cell``, the path users run): capacities at 0.2/1/2/3C, the
  twins' spread, and the figures behind a difference; a second run of one twin from its seed
  must give the same figures.
* ``speed`` — the cell figures of one 128³ twin (interfaces, conductivities, τ_e, four DFN
  discharges) through ``gencal cell``'s API path, with the time of each part.
* ``sweep`` — a 20-point sweep (``vf:0`` × ``length_scale``, 128³, one realization each) on the
  2-worker LocalCluster without and with cell metrics: the time ratio, and the capacity-vs-knob
  figure of docs/sweeps.md (``--figure``).

Reference figures are measured in the same run; nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.core.boolean_truth
DATA = ROOT / ".." / "shared" / "data" / "electrode.tiff"
VOXEL = "0.39um"  # 100 µm / 256 px (TauFactor's notebook for this file)
CELL = {"active": 85, "electrolyte": 0, "conductors": (170,)}


def bench_interfaces(model_path: str | None, seeds: int) -> None:
    from tests.core.boolean_truth import (
        analytic_truth,
        lattice_ratio,
        realized_truth,
        three_phase_boolean,
    )

    from napari_gencal.core.descriptors import interfacial_areas, triple_phase_boundary_density

    keys = ("0|1", "1|2", "0|2", "tpb")
    for n, r1, r2 in ((160, 12.0, 10.0), (256, 24.0, 20.0)):
        p1, p2 = 0.3, 0.35
        ana = analytic_truth(r1, p1, r2, p2)
        lat = lattice_ratio(r1, p1, r2, p2)
        est_all, real_all = [], []
        t_est = 0.0
        for seed in range(seeds):
            vol, c1, c2 = three_phase_boolean(n, r1, p1, r2, p2, seed)
            real = realized_truth(n, c1, r1, c2, r2, m=1000, seed=seed + 100)
            t0 = time.perf_counter()
            pairs = interfacial_areas(vol, 3)
            tpb = triple_phase_boundary_density(vol)
            t_est += time.perf_counter() - t0
            est = {"0|1": pairs[(0, 1)], "1|2": pairs[(1, 2)], "0|2": pairs[(0, 2)], "tpb": tpb}
            est["tpb_vertices"] = triple_phase_boundary_density(vol, method="vertices")
            est_all.append(est)
            real_all.append(real)
        print(f"\nBoolean model {n}³, R = {r1:g} / {r2:g}, fractions {p1} / {p2}, {seeds} seeds "
              f"(estimators {t_est / seeds:.1f} s per volume)")  # fmt: skip
        print("quantity | est / analytic − 1 (mean ± SD) | est / realized − 1 | lattice offset")
        for k in keys:
            e = np.array([x[k] for x in est_all])
            rr = np.array([x[k] for x in real_all])
            a = e / ana[k] - 1
            b = e / rr - 1
            off = f"{100 * (lat[k] - 1):+.1f} %" if k in lat else "–"
            print(f"{k} | {100 * a.mean():+.2f} ± {100 * a.std(ddof=1):.2f} % | "
                  f"{100 * b.mean():+.2f} ± {100 * b.std(ddof=1):.2f} % | {off}")  # fmt: skip
        v = np.array([x["tpb_vertices"] / y["tpb"] - 1 for x, y in zip(est_all, real_all,
                                                                        strict=True)])  # fmt: skip
        print(f"TPB by vertex count (TauFactor's convention) / realized − 1: "
              f"{100 * v.mean():+.1f} ± {100 * v.std(ddof=1):.1f} %")  # fmt: skip
    if not model_path:
        return
    from napari_gencal import api

    data = api.read_labels(DATA, phases="0,85,170")
    d = api.describe(data, include=("volume_fraction", "interfaces"))
    model = api.load_model(model_path)
    print(f"\nelectrode.tiff against twins of its shape {data.data.shape} (1/voxel):")
    print("pair | data | twin seed 1 | twin seed 2 | rel. error (mean)")
    twins = [api.describe(api.read_labels(api.generate(model, data.data.shape, seed=s),
                                          phases="0,85,170"),
                          include=("volume_fraction", "interfaces")) for s in (1, 2)]  # fmt: skip
    for pair, dv in list(d["interfaces"].items()) + [("TPB", d["triple_phase_boundary"])]:
        tv = [t["interfaces"][pair] if pair != "TPB" else t["triple_phase_boundary"]
              for t in twins]  # fmt: skip
        print(f"{pair} | {dv:.4f} | {tv[0]:.4f} | {tv[1]:.4f} | "
              f"{100 * (np.mean(tv) / dv - 1):+.1f} %")  # fmt: skip


def _print_cell(res) -> None:
    print(res)
    for run in res.runs:
        if run.figures is not None:
            f = run.figures
            print(f"  {run.name}: τ_el {f.tau_electrolyte:.3f}, τ_s {f.tau_electronic:.2f}, "
                  f"a_AM|el {f.area_active_electrolyte:.4g} 1/m, S_V(AM) {f.surface_active:.4g} "
                  f"1/m, R {1e6 * f.particle_radius_geometric:.2f} µm, accessible "
                  f"{100 * f.accessible:.1f} %, τ_e {f.tau_e:.3f}, seconds "
                  + ", ".join(f"{k} {v:.1f}" for k, v in f.seconds.items()))  # fmt: skip


def _print_run(run) -> None:
    """One volume's figures and capacities, printed as soon as it is done."""
    f = run.figures
    if f is not None:
        print(f"{run.name}: ε_el {f.eps_electrolyte:.4f}, ε_AM {f.eps_active:.4f} (accessible "
              f"{100 * f.accessible:.1f} %), S_V(AM) {f.surface_active:.4g} 1/m, a_AM|el "
              f"{f.area_active_electrolyte:.4g} 1/m (wetted share "
              f"{f.area_active_electrolyte / f.surface_active:.3f}), R "
              f"{1e6 * f.particle_radius_geometric:.3f} µm, τ_el {f.tau_electrolyte:.3f}, "
              f"τ_s {f.tau_electronic:.3f}, σ_eff {f.sigma_electronic:.4g} S/m, τ_e "
              f"{f.tau_e:.3f}", flush=True)  # fmt: skip
    if run.error:
        print(f"{run.name}: no cell: {run.error}", flush=True)
    caps = ", ".join(f"{d.rate:g}C {d.capacity:.4f} A.h ({100 * d.utilisation:.1f} %)"
                     + (f" [{d.error}]" if d.error else "") for d in run.discharges)  # fmt: skip
    secs = ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items())
    print(f"{run.name}: {caps}; seconds: {secs}", flush=True)


#: Descriptor groups swapped one at a time from the twins into the data's cell, to find which
#: one causes a capacity difference (each substitution re-maps and re-discharges the data cell).
_GROUPS = {
    "ε of the electrolyte": ("eps_electrolyte",),
    "ε of NMC × accessible share": ("eps_active", "accessible"),
    "R = 3ε/S_V(NMC) (wetted share kept)": ("surface_active",),
    "NMC|electrolyte wetted share a/S_V": ("area_active_electrolyte",),
    "τ of the electrolyte": ("tau_electrolyte",),
    "τ_s and σ of the solid": ("tau_electronic", "sigma_solid_mean"),
}


def _attribution(data_run, twin_runs, settings) -> None:
    """Swap each descriptor group of the data's figures for the twins' mean; print the change
    of capacity at each rate against the gap twins − data."""
    from dataclasses import replace

    from napari_gencal.core.cell.mapping import cell_parameter_values
    from napari_gencal.core.cell.simulate import run_discharges

    f0 = data_run.figures
    tw = [r.figures for r in twin_runs if r.figures is not None]
    mean = {k: float(np.mean([getattr(f, k) for f in tw]))
            for fs in _GROUPS.values() for k in fs}  # fmt: skip
    base = {d.rate: d.capacity for d in data_run.discharges}
    gap = {r: float(np.mean([d.capacity for t in twin_runs for d in t.discharges
                             if d.rate == r])) - base[r] for r in base}  # fmt: skip
    print("\nwhich descriptor makes the difference: the data's cell with one descriptor group "
          "set to the twins' mean; Δcapacity [A.h] per rate (and its share of the gap "
          "twins − data)", flush=True)  # fmt: skip
    print("gap twins − data: " + ", ".join(f"{r:g}C {g:+.4f}" for r, g in gap.items()))
    for name, keys in _GROUPS.items():
        change = {k: mean[k] for k in keys}
        if keys == ("surface_active",):  # keep the data's wetted share a/S_V
            share = f0.area_active_electrolyte / f0.surface_active
            change["area_active_electrolyte"] = share * mean["surface_active"]
        if keys == ("area_active_electrolyte",):  # the twins' share on the data's S_V
            change["area_active_electrolyte"] = f0.surface_active * float(np.mean(
                [f.area_active_electrolyte / f.surface_active for f in tw]))  # fmt: skip
        vals = ", ".join(f"{k} {getattr(f0, k):.4g}→{v:.4g}" for k, v in change.items())
        pv, _ = cell_parameter_values(replace(f0, **change), settings)
        ds = run_discharges(pv, settings)
        parts = []
        for d in ds:
            dc = d.capacity - base[d.rate]
            share = dc / gap[d.rate] if gap[d.rate] else float("nan")
            parts.append(f"{d.rate:g}C {dc:+.4f} ({100 * share:+.0f} %)")
        print(f"{name} ({vals}): " + ", ".join(parts), flush=True)


def bench_cell(model_path: str, shape: int | None, out: Path | None, tau_e: bool) -> None:
    from napari_gencal import api
    from napari_gencal.core.cell import CellResult

    data = api.read_labels(DATA, phases="0,85,170").data
    if shape:  # a corner crop of the data and twins of that size (a loaded machine)
        data = data[:shape, :shape, :shape]
    shp = data.shape[0]
    kw = {**CELL, "voxel_size": VOXEL, "electrode_tortuosity": tau_e}
    t0 = time.perf_counter()
    # one volume at a time, each printed when done (a run cut short still leaves its figures)
    runs, settings = [], None
    for name, src, extra in (("data", data, {"phases": "0,85,170"}),
                             *((f"twin seed {s}", model_path, {"seed": s, "shape": shp})
                               for s in (1, 2, 3))):  # fmt: skip
        t1 = time.perf_counter()
        res = api.cell(src, **kw, **extra)
        run = res.runs[0]
        run.name = name
        runs.append(run)
        settings = res.settings
        _print_run(run)
        print(f"{name}: {time.perf_counter() - t1:.0f} s (generation included)", flush=True)
    res = CellResult(settings, runs)
    print(f"data {data.shape} and three twins of {shp}³, {time.perf_counter() - t0:.0f} s")
    if out is not None:
        res.write(out)
    data_run = res.runs[0]
    print("\nrate | data [A.h] | twins mean ± SD [A.h] | min … max | data within the spread?")
    for s in res.spread():
        dv = next(d.capacity for d in data_run.discharges if d.rate == s["rate"])
        inside = s["min"] <= dv <= s["max"]
        z = (dv - s["mean"]) / s["sd"] if s["sd"] > 0 else float("nan")
        print(f"{s['rate']:g}C | {dv:.4f} | {s['mean']:.4f} ± {s['sd']:.4f} | "
              f"{s['min']:.4f} … {s['max']:.4f} | {'yes' if inside else 'no'} ({z:+.1f} SD)",
              flush=True)  # fmt: skip
    if data_run.figures is not None and all(r.figures is not None for r in runs[1:]):
        _attribution(data_run, runs[1:], settings)
    # reproducible from the seed: the same twin twice gives the same figures and capacities
    # (on a 96³ twin, to keep the check cheap)
    rep = [api.cell(model_path, **kw, seed=7, shape=96).runs[0] for _ in range(2)]
    a, b = rep
    same = all(x.capacity == y.capacity for x, y in zip(a.discharges, b.discharges, strict=True))
    print(f"a 96³ twin (seed 7) twice: identical capacities: {same}; τ_el "
          f"{a.figures.tau_electrolyte:.6f} vs {b.figures.tau_electrolyte:.6f}")


def bench_speed(model_path: str | None, size: int) -> None:
    import os

    from napari_gencal import api

    src = model_path or str(DATA)
    load0 = os.getloadavg()[0]
    c0 = time.process_time()
    t0 = time.perf_counter()
    if model_path:
        res = api.cell(src, **CELL, voxel_size=VOXEL, realizations=1, shape=size, seed=1)
    else:
        vol = api.read_labels(DATA, phases="0,85,170").data[:size, :size, :size]
        res = api.cell(vol, **CELL, voxel_size=VOXEL, phases="0,85,170")
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    _print_cell(res)
    run = res.runs[0]
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in run.seconds.items())
    print(f"{size}³ {'twin' if model_path else 'data crop'}: {total:.1f} s in all (generation "
          f"included; goal ≤ 60 s); parts: {parts}")
    print("discharges: " + ", ".join(f"{d.rate:g}C {d.seconds:.2f} s" for d in run.discharges))
    print(f"CPU time {cpu:.1f} s (two torch threads: wall ≈ CPU / 2 on an idle machine); load "
          f"average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


def bench_sweep(model_path: str, size: int, workers: int, figure: Path | None) -> None:
    from napari_gencal.core.sweep import SweepSpec, grid
    from napari_gencal.core.sweep.run import run_sweep

    model = json.loads(Path(model_path).read_text())
    design = grid({"vf:0": [0.35, 0.40, 0.45, 0.50, 0.55],
                   "length_scale": [0.8, 1.0, 1.25, 1.5]})  # fmt: skip
    cell = {**CELL, "conductors": [170], "voxel_size": VOXEL, "rates": [0.2, 1, 2, 3]}
    times, tables = {}, {}
    for name, extra, measures in (("without", {}, None), ("with", {"cell": cell}, "cell")):
        from napari_gencal.core.sweep.run import MEASURES

        ms = MEASURES + ((measures,) if measures else ())
        spec = SweepSpec(model, design, 1, (size,) * 3, 0, ms, directions=("z",), extra=extra)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            tables[name] = run_sweep(spec, Path(tmp) / "s", n_workers=workers)
            times[name] = time.perf_counter() - t0
        errs = int((tables[name]["error"].fillna("") != "").sum())
        print(f"{design.n_points} points of {size}³ {name} cell metrics: {times[name]:.0f} s "
              f"({errs} errors)")  # fmt: skip
    print(f"ratio with / without: {times['with'] / times['without']:.2f} (goal ≤ 1.3)")
    t = tables["with"]
    # the same ratio from inside the rows (each task times its parts together, so a load that
    # changes between the two sweeps does not bias it)
    parts = t[["t_generate", "t_descriptors", "t_transport"]].sum().sum()
    print(f"in-row ratio (all parts + cell) / (all parts): {1 + t['t_cell'].sum() / parts:.2f}; "
          f"cell {t['t_cell'].mean():.1f} s per task, the rest {parts / len(t):.1f} s")
    cols = [c for c in t.columns if c.startswith(("capacity[", "utilisation[", "cell"))]
    print(t[["vf:0", "length_scale", *cols]].to_string(float_format=lambda x: f"{x:.3f}"))
    if "cell_error" in t:
        bad = t[t["cell_error"].fillna("") != ""]
        for _, r in bad.iterrows():
            print(f"cell error at vf:0 {r['vf:0']}, length_scale {r['length_scale']}: "
                  f"{r['cell_error']}")  # fmt: skip
    if figure is not None:
        _capacity_figure(t, figure)


def _capacity_figure(t, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), constrained_layout=True)
    ax1, ax2 = fig.subplots(1, 2)
    for ls, g in t.groupby("length_scale"):
        g = g.sort_values("vf:0")
        ax1.plot(g["vf:0"], g["capacity[2C]"], "o-", label=f"length_scale {ls:g}")
        ax2.plot(g["vf:0"], g["utilisation[2C]"], "o-", label=f"length_scale {ls:g}")
    ax1.set_xlabel("electrolyte volume fraction (vf:0)")
    ax1.set_ylabel("capacity at 2C [A.h]")
    ax2.set_xlabel("electrolyte volume fraction (vf:0)")
    ax2.set_ylabel("share of the capacity delivered at 2C")
    ax2.legend(fontsize=7)
    fig.suptitle("electrode.tiff twin as the cathode of a Chen2020 cell (DFN)", fontsize=9)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="name", required=True)
    a = sub.add_parser("interfaces")
    a.add_argument("--model")
    a.add_argument("--seeds", type=int, default=3)
    b = sub.add_parser("cell")
    b.add_argument("--model", required=True)
    b.add_argument("--shape", type=int)
    b.add_argument("--out", type=Path)
    b.add_argument("--no-tau-e", action="store_true",
                   help="skip the electrode tortuosity solve (reported only, not in the cell)")
    c = sub.add_parser("speed")
    c.add_argument("--model")
    c.add_argument("--size", type=int, default=128)
    d = sub.add_parser("sweep")
    d.add_argument("--model", required=True)
    d.add_argument("--size", type=int, default=128)
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("--figure", type=Path)
    args = p.parse_args()
    import torch

    torch.set_num_threads(2)
    if args.name == "interfaces":
        bench_interfaces(args.model, args.seeds)
    elif args.name == "cell":
        bench_cell(args.model, args.shape, args.out, not args.no_tau_e)
    elif args.name == "speed":
        bench_speed(args.model, args.size)
    else:
        bench_sweep(args.model, args.size, args.workers, args.figure)


if __name__ == "__main__":
    main()
