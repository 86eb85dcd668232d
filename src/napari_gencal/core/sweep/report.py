"""A sweep's report: per-point means, fitted relations, sensitivity indices and figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .relations import figures, fit_relation, sensitivity
from .run import summarize

__all__ = ["sweep_report"]


def _phase_labels(table) -> list[str]:
    return sorted({c.split("[")[1].split("]")[0].split(",")[0] for c in table.columns
                   if c.startswith("volume_fraction[")}, key=str)  # fmt: skip


def sweep_report(spec: Any, table, out: Path) -> str:
    """Write ``report.md`` (and PNG figures) into ``out``; return the Markdown text.

    Relations: the Stenzel-type fit for every phase and direction with at least four
    percolating rows; sensitivity: Sobol' or Morris indices of every phase's D_eff/D_0 along the
    first direction (when transport was measured) or its S_V otherwise.
    """
    out = Path(out)
    knobs = list(spec.design.knobs)
    lines = [
        "# Sweep report",
        "",
        f"{spec.design.kind} design over {', '.join(knobs)}: {spec.design.n_points} points × "
        f"{spec.realizations} realizations of {'×'.join(map(str, spec.shape))} voxels, seed "
        f"{spec.seed}. Table: `table.parquet` / `table.csv` (one row per realization); per-point "
        "means with 95 % confidence intervals: `summary.csv`.",
        "",
    ]
    if "length_unit" in table and len(table):
        units = table["length_unit"].dropna()
        u = str(units.iloc[0]) if len(units) else "voxel"
        lines += [f"Lengths in {u} (chords, r_min, r_max), S_V and interface areas in 1/{u}"
                  + ("" if u != "voxel" else " — the model has no voxel size") + ".", ""]
    errors = table[table["error"].fillna("") != ""] if "error" in table else table.iloc[:0]
    if len(errors):
        lines += [f"{len(errors)} realizations failed and are left out of the fits:", ""]
        lines += [f"* point {r.point}, realization {r.realization}: {r.error}"
                  for r in errors.itertuples()][:20]  # fmt: skip
        lines.append("")
    summary = summarize(table, knobs)
    phases = _phase_labels(table)
    show = list(knobs) + [f"{m}[{p}]:mean" for p in phases
                              for m in ("volume_fraction", "specific_surface_area")]  # fmt: skip
    d0 = spec.directions[0]
    show += [f"effective_diffusivity[{p},{d0}]:mean" for p in phases
             if f"effective_diffusivity[{p},{d0}]:mean" in summary.columns]  # fmt: skip
    show = [c for c in show if c in summary.columns]
    if len(summary):
        lines += ["## Per point (means)", "", "| " + " | ".join(["point", *show]) + " |",
                  "|" + "---|" * (len(show) + 1)]  # fmt: skip
        for r in summary.itertuples(index=False):
            d = r._asdict()
            cells = [str(d["point"])]
            for c in show:
                v = summary.loc[summary["point"] == d["point"], c].iloc[0]
                cells.append(f"{v:.4g}" if isinstance(v, float | np.floating) else str(v))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    relations = []
    if "transport" in spec.measures:
        lines += ["## Structure–property relations (D_eff/D_0 = ε^a · β^b / τ^c)", ""]
        for p in phases:
            for d in spec.directions:
                try:
                    rel = fit_relation(table, p, d)
                except ValueError as exc:
                    lines.append(f"* phase {p}, {d}: not fitted — {exc}")
                    continue
                relations.append(rel)
                lines.append(f"* {rel}")
        lines.append("")
    indices = None
    if spec.design.kind in ("sobol", "morris"):
        target = (f"effective_diffusivity[{phases[0]},{d0}]" if "transport" in spec.measures
                  else f"specific_surface_area[{phases[0]}]")  # fmt: skip
        try:
            indices = sensitivity(spec.design, table, target)
            lines += [f"## Sensitivity of {target} ({spec.design.kind})", "",
                      "| index | " + " | ".join(knobs) + " |", "|" + "---|" * (len(knobs) + 1)]
            for k, vals in indices.items():
                lines.append(f"| {k} | " + " | ".join(f"{vals[n]:.3f}" for n in knobs) + " |")
            lines.append("")
        except ValueError as exc:
            lines += [f"Sensitivity analysis not possible: {exc}", ""]
    descriptor = f"specific_surface_area[{phases[0]}]" if phases else None
    best = max(relations, key=lambda r: 0 if math.isnan(r.r2) else r.r2) if relations else None
    for name, fig in figures(table, spec.design, best, indices, descriptor).items():
        fig.savefig(out / f"{name}.png")
        lines += [f"![{name}]({name}.png)", ""]
    text = "\n".join(lines)
    from ..io import atomic_write

    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                 overwrite=True)  # fmt: skip
    return text
