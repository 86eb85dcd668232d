"""Virtual materials testing: the worked example, throughput on Dask, and twins out of core.

Sub-benchmarks (``python benchmarks/bench_sweep.py NAME [...]``), one at a time on 2 cores:

* ``example`` — the worked example of docs/sweeps.md: a calibrated model (``--model``), the
  volume fraction of one phase × the length scale (5 × 3 points), 3 realizations of 128³ each,
  descriptors and TauFactor along z; the Stenzel-type fit and its held-out error; then a Sobol'
  design over 4 knobs (64³, no transport) and its indices.
* ``throughput`` — the same points on a 2-worker LocalCluster against a plain loop in one process
  with one torch thread, and against the loop with two threads (ratios printed), the peak memory
  per worker, and the wall time per task against the sum of its parts timed alone.
* ``outofcore`` — a 1024³ twin written to zarr (peak memory of the process tree), the zarr path
  against the in-memory path at 384³, and chunked VF / S_V against the in-memory values.

Reference figures are measured in the same run; nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _model(path: str | None):
    from napari_gencal.core.model import ExcursionModel

    if path:
        return ExcursionModel.load(path)
    from napari_gencal.core.phases import PhaseMap

    print("no --model given: a default three-phase model (m 8, ℓ 3) stands in for a twin")
    return ExcursionModel.default("high", m=8, fractions=[0.45, 0.40, 0.15], width=3.0,
                                  phase_map=PhaseMap((0, 85, 170)))  # fmt: skip


def bench_example(model_path: str | None, size: int, out: Path, sobol_n: int = 64,
                  only_sobol: bool = False) -> None:  # fmt: skip
    from napari_gencal.core.sweep import SweepSpec, grid
    from napari_gencal.core.sweep.relations import fit_relation
    from napari_gencal.core.sweep.report import sweep_report
    from napari_gencal.core.sweep.run import run_sweep

    model = _model(model_path)
    labels = list(model.user_phase_map.labels)
    phase = labels[1]
    vf = f"vf:{phase}"
    spec = SweepSpec(model.to_dict(), grid({vf: [0.30, 0.35, 0.40, 0.45, 0.50],
                                            "length_scale": [0.8, 1.0, 1.25]}),
                     3, (size,) * 3, 0, directions=("z",))  # fmt: skip
    t0 = time.perf_counter()

    def show(done, total, row):
        print(f"  {done}/{total}", end="\r", flush=True)

    if only_sobol:
        return _sobol(model, vf, labels, phase, out, sobol_n)
    table = run_sweep(spec, out / "example", n_workers=2, resume=True, progress=show)
    t_sweep = time.perf_counter() - t0
    print(f"\n[example] {len(table)} realizations of {size}³ in {t_sweep / 60:.1f} min "
          f"(2 workers); errors: {int((table['error'] != '').sum())}")  # fmt: skip
    print(sweep_report(spec, table, out / "example"))
    for p in labels:
        try:
            print(f"[example] {fit_relation(table, p, 'z')}")
        except ValueError as exc:
            print(f"[example] phase {p}: {exc}")
    _sobol(model, vf, labels, phase, out, sobol_n)


def _sobol(model, vf: str, labels: list, phase, out: Path, n: int) -> None:
    """A Sobol' design over four knobs (64³, no transport) and its indices."""
    from napari_gencal.core.sweep import SweepSpec, sobol
    from napari_gencal.core.sweep.relations import sensitivity
    from napari_gencal.core.sweep.run import run_sweep

    knobs = {vf: (0.3, 0.5), "length_scale": (0.8, 1.25), "sigma1": (0.5, 2.0), "a": (0.2, 0.8)}
    d = sobol(knobs, n, seed=1)
    s2 = SweepSpec(model.to_dict(), d, 1, (64, 64, 64), 1,
                   ("volume_fraction", "specific_surface_area", "mean_chord_length"), ("z",))
    t0 = time.perf_counter()
    t2 = run_sweep(s2, out / f"sobol{n}", n_workers=2, resume=True)
    print(f"[sobol] {d.n_points} points of 64³ in {(time.perf_counter() - t0) / 60:.1f} min")
    for col in (f"specific_surface_area[{labels[0]}]", f"mean_chord_length[{phase},z]"):
        idx = sensitivity(d, t2, col)
        print(f"[sobol] {col}: " + ", ".join(f"{k} S1 {idx['S1'][k]:.2f} ST {idx['ST'][k]:.2f}"
                                             for k in knobs))  # fmt: skip


def _peak_rss_children() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # GB (Linux: kB)


def bench_throughput(model_path: str | None, size: int, points: int, out: Path) -> None:
    import torch

    from napari_gencal.core.sweep import SweepSpec, grid
    from napari_gencal.core.sweep.design import realization_seed
    from napari_gencal.core.sweep.run import evaluate, run_sweep

    model = _model(model_path)
    labels = list(model.user_phase_map.labels)
    vals = np.linspace(0.3, 0.5, points).tolist()
    spec = SweepSpec(model.to_dict(), grid({f"vf:{labels[1]}": vals}), 2, (size,) * 3, 3,
                     directions=("z",))  # fmt: skip

    def loop(threads: int) -> tuple[float, list[dict]]:
        torch.set_num_threads(threads)
        t0, rows = time.perf_counter(), []
        for p, r in spec.tasks:
            seed = realization_seed(spec.seed, p, r)
            rows.append(evaluate(spec.model, spec.design.point(p), seed, spec.shape,
                                 spec.measures, spec.directions, device="cpu", threads=threads))
        return time.perf_counter() - t0, rows

    t_one, rows = loop(1)
    parts = float(np.mean([r["t_generate"] + r["t_descriptors"] + r["t_transport"] for r in rows]))
    t_two, _ = loop(2)
    folder = out / "throughput"
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    table = run_sweep(spec, folder, n_workers=2)
    t_dask = time.perf_counter() - t0
    n = len(spec.tasks)
    print(f"[throughput] {n} tasks of {size}³ (descriptors + TauFactor along z)")
    print(f"  loop, one process, 1 thread : {t_one:.1f} s ({t_one / n:.1f} s/task)")
    print(f"  loop, one process, 2 threads: {t_two:.1f} s ({t_two / n:.1f} s/task)")
    print(f"  sweep, 2-worker LocalCluster: {t_dask:.1f} s ({t_dask / n:.1f} s/task; cluster "
          "start-up included)")  # fmt: skip
    print(f"  scaling efficiency vs 1-thread loop: {t_one / t_dask:.2f}x (target ≥ 1.7x); "
          f"vs 2-thread loop: {t_two / t_dask:.2f}x (must be ≥ 1)")  # fmt: skip
    per_task = float(np.mean(table["t_generate"] + table["t_descriptors"] + table["t_transport"]))
    print(f"  per task inside the sweep {per_task:.1f} s vs its parts timed alone {parts:.1f} s "
          f"({per_task / parts:.2f}x; target within 1.15x)")  # fmt: skip
    print(f"  peak RSS of a worker process: {_peak_rss_children():.2f} GB")


def bench_outofcore(model_path: str | None, out: Path, big: int, mid: int) -> None:
    import subprocess
    import sys

    from napari_gencal.core.descriptors import specific_surface_area, volume_fraction
    from napari_gencal.core.generate import generate
    from napari_gencal.core.outofcore import (
        generate_to_zarr,
        open_zarr_twin,
        surface_area_chunked,
        volume_fractions_chunked,
    )
    from napari_gencal.core.phases import to_indices

    model = _model(model_path)
    path = Path(model_path) if model_path else out / "bench.gencal.json"
    if not model_path:
        model.save(path, overwrite=True)
    pm = model.user_phase_map
    # (1) the big twin, in a fresh process so that its peak memory is its own
    z_big = out / f"twin{big}.zarr"
    shutil.rmtree(z_big, ignore_errors=True)
    code = (
        "import resource, time, sys; from napari_gencal.core.model import ExcursionModel; "
        "from napari_gencal.core.outofcore import generate_to_zarr; "
        f"m = ExcursionModel.load({str(path)!r}); t = time.perf_counter(); "
        f"generate_to_zarr(m, ({big},) * 3, {str(z_big)!r}, seed=1, chunks=128, num_workers=2); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    secs, rss = res.stdout.split()
    print(f"[outofcore] {big}³ twin to zarr, 128³ chunks, 2 threads: {float(secs) / 60:.1f} min, "
          f"peak RSS {int(rss) / 2**20:.2f} GB (target ≤ 4 GB)")  # fmt: skip
    # (2) zarr vs in memory where both fit
    z_mid = out / f"twin{mid}.zarr"
    shutil.rmtree(z_mid, ignore_errors=True)
    t0 = time.perf_counter()
    generate_to_zarr(model, (mid,) * 3, z_mid, seed=1, chunks=128, num_workers=2)
    t_z = time.perf_counter() - t0
    t0 = time.perf_counter()
    whole = generate(model, (mid,) * 3, seed=1, device="cpu", chunks=None)
    t_m = time.perf_counter() - t0
    arr, _ = open_zarr_twin(z_mid)
    same = bool(np.array_equal(arr.compute(), whole))
    print(f"[outofcore] {mid}³: zarr {t_z:.1f} s, in memory {t_m:.1f} s (ratio {t_z / t_m:.2f}); "
          f"identical voxels: {same}")  # fmt: skip
    idx = to_indices(whole, pm)
    vf_c = volume_fractions_chunked(arr, pm.labels)
    sv_c = surface_area_chunked(arr, pm.labels)
    print(f"[outofcore] chunked VF {np.round(vf_c, 6).tolist()} vs in memory "
          f"{np.round(volume_fraction(idx, 3), 6).tolist()}; S_V max relative difference "
          f"{np.max(np.abs(sv_c / specific_surface_area(idx, 3) - 1)):.1e}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="+", choices=("example", "throughput", "outofcore"))
    p.add_argument("--model", help="a calibrated model file (default: a stand-in model)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--points", type=int, default=4, help="throughput: knob values (× 2 each)")
    p.add_argument("--sobol-n", type=int, default=64, help="example: Sobol' base sample size")
    p.add_argument("--only-sobol", action="store_true", help="example: only the Sobol' part")
    p.add_argument("--big", type=int, default=1024)
    p.add_argument("--mid", type=int, default=384)
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "gencal-bench-sweep"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"cpus": os.cpu_count()}))
    for name in args.names:
        if name == "example":
            bench_example(args.model, args.size, out, args.sobol_n, args.only_sobol)
        elif name == "throughput":
            bench_throughput(args.model, args.size, args.points, out)
        else:
            bench_outofcore(args.model, out, args.big, args.mid)


if __name__ == "__main__":
    main()
