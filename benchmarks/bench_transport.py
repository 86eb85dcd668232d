"""Do twins carry the data's transport? TauFactor τ per phase and axis, data vs twins (issue 16).

For each 3D case of ``bench_generalisation.py`` whose model file exists in ``--models`` (the
models a default calibration wrote), the central crop of the data (``--side``, default 128³) and
``--realizations`` twins of the same shape are solved with TauFactor along z, y and x for every
phase; the table gives τ of the data, the twins' mean and spread, the relative error, and whether
the phase percolates in each. Target (issue 16): τ within 15 % along every axis, percolation
agreeing; three twins' spread is printed beside it, not counted (its estimate is too noisy).
The percolating fraction (share of a phase in clusters joining both faces) is listed too.

Usage::

    python benchmarks/bench_generalisation.py electrode ellipsoids separator tf   # the models
    python benchmarks/bench_transport.py --models /tmp/gencal-generalisation
    python benchmarks/bench_transport.py --models DIR --side 96 electrode

Never run two benchmarks at once on 2 cores: TauFactor at 128³ takes 5–40 s per solve here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_generalisation import CASES, _input_file  # noqa: E402

#: 3D cases with transport to compare (the tortuosity benchmark volume has published factors
#: 1.15 / 1.39 / 4.24 along its axes, for its whole 500³).
TRANSPORT_CASES = {
    "electrode": None,
    "ellipsoids": None,
    "separator": None,
    "tf": None,
    "electrode_128a": None,
    "electrode_128b": None,
    "rock": None,
    "rock_seed1": None,
    "rock_x2": None,
}


def _tau(idx: np.ndarray, phase: int, axis: int, k: int) -> tuple[float, bool]:
    from napari_gencal.core.descriptors.transport import effective_transport

    r = effective_transport(idx, phase, axis, n_phases=k, iter_limit=6000, conv_crit=0.01)
    return (float(r.tau_factor) if r.percolates else math.inf), bool(r.percolates)


def run_case(name: str, models: Path, side: int, n: int, seed: int) -> dict:
    from napari_gencal.core.descriptors.connectivity import percolating_fraction
    from napari_gencal.core.generate import generate
    from napari_gencal.core.io import read_labels
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import to_indices

    model = ExcursionModel.load(models / f"{name}.gencal.json")
    labels = CASES[name][1]
    path = _input_file(name, models)
    vol = to_indices(read_labels(path, phases=labels).data, model.phase_map)
    crop = tuple(slice((s - min(s, side)) // 2, (s - min(s, side)) // 2 + min(s, side))
                 for s in vol.shape)  # fmt: skip
    data = np.ascontiguousarray(vol[crop])
    k = model.n_phases
    twins = [to_indices(generate(model, data.shape, seed=seed + j, device="cpu"),
                        model.phase_map) for j in range(n)]  # fmt: skip
    rows = []
    t0 = time.perf_counter()
    for i in range(k):
        for ax in range(3):
            d_tau, d_perc = _tau(data, i, ax, k)
            m = [_tau(t, i, ax, k) for t in twins]
            m_tau = np.array([v for v, _ in m])
            m_perc = sum(p for _, p in m)
            fin = m_tau[np.isfinite(m_tau)]
            mean = float(fin.mean()) if fin.size else math.inf
            sd = float(fin.std(ddof=1)) if fin.size > 1 else 0.0
            err = mean / d_tau - 1 if math.isfinite(d_tau) and math.isfinite(mean) else None
            agree = d_perc == (2 * m_perc > n)
            ok = agree and (err is None or abs(err) <= 0.15)
            rows.append({
                "phase": int(model.phase_map.labels[i]), "axis": "zyx"[ax],
                "tau_data": d_tau, "tau_twin": mean, "tau_twin_sd": sd, "error": err,
                "percolates_data": d_perc, "percolating_twins": f"{m_perc}/{n}",
                "pf_data": percolating_fraction(data, i, ax, n_phases=k),
                "pf_twin": float(np.mean([percolating_fraction(t, i, ax, n_phases=k)
                                          for t in twins])),
                "ok": bool(ok),
            })  # fmt: skip
            print(f"  {name} phase {rows[-1]['phase']} {rows[-1]['axis']}: data {d_tau:.3g}, "
                  f"twins {mean:.3g} ± {sd:.2g} ({'ok' if ok else 'MISS'})", flush=True)
    return {"name": name, "shape": list(data.shape), "realizations": n, "rows": rows,
            "seconds": time.perf_counter() - t0,
            "all_ok": all(r["ok"] for r in rows)}  # fmt: skip


def table(results: list[dict]) -> str:
    out = ["| case (crop) | phase | axis | τ data | τ twins (mean ± sd) | error | percolates "
           "(data / twins) | percolating fraction data / twins | within target |",
           "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        shape = "×".join(map(str, r["shape"]))
        for row in r["rows"]:
            e = "–" if row["error"] is None else f"{100 * row['error']:+.1f} %"
            td = "∞" if not math.isfinite(row["tau_data"]) else f"{row['tau_data']:.3g}"
            tt = ("∞" if not math.isfinite(row["tau_twin"])
                  else f"{row['tau_twin']:.3g} ± {row['tau_twin_sd']:.2g}")  # fmt: skip
            out.append(
                f"| {r['name']} ({shape}) | {row['phase']} | {row['axis']} | {td} | {tt} | {e} | "
                f"{'yes' if row['percolates_data'] else 'no'} / {row['percolating_twins']} | "
                f"{row['pf_data']:.3f} / {row['pf_twin']:.3f} | "
                f"{'yes' if row['ok'] else '**no**'} |"
            )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help=f"cases (default: {', '.join(TRANSPORT_CASES)})")
    p.add_argument("--models", default="/tmp/gencal-generalisation",
                   help="folder with <case>.gencal.json from bench_generalisation.py")
    p.add_argument("--side", type=int, default=128, help="largest side of the crops compared")
    p.add_argument("--realizations", type=int, default=3)
    p.add_argument("--seed", type=int, default=500)
    args = p.parse_args()
    models = Path(args.models)
    results = []
    for name in args.names or list(TRANSPORT_CASES):
        if not (models / f"{name}.gencal.json").exists():
            print(f"[{name}] no model in {models}; run bench_generalisation.py {name} first")
            continue
        print(f"[{name}]", flush=True)
        res = run_case(name, models, args.side, args.realizations, args.seed)
        (models / f"{name}.transport.json").write_text(json.dumps(res, indent=1, default=float))
        results.append(res)
    text = table(results)
    (models / "transport.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
