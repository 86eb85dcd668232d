"""A cell per volume: figures → parameters → discharges, and the result's tables and figures."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import CellFigures, measure_cell_figures
from .settings import CellError, CellSettings
from .simulate import Discharge

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CellRun", "CellResult", "simulate_cell", "cell_runs", "cell_metrics"]


@dataclass
class CellRun:
    """One volume as a cell.

    Attributes
    ----------
    name : str
        ``"data"``, ``"twin seed 1"``, …
    figures : CellFigures or None
    parameters : list of dict
        The mapping record (``name``, ``value``, ``source``).
    discharges : list of Discharge
    error : str
        Why there is no cell (empty when it ran).
    parameter_values : pybamm.ParameterValues or None
    seconds : dict
    """

    name: str
    figures: CellFigures | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    discharges: list[Discharge] = field(default_factory=list)
    error: str = ""
    parameter_values: Any = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "error": self.error,
            "figures": self.figures.to_dict() if self.figures else None,
            "parameters": self.parameters,
            "discharges": [d.to_dict(curves) for d in self.discharges],
            "seconds": self.seconds,
        }


def simulate_cell(
    indices: np.ndarray,
    labels: tuple[Any, ...],
    settings: CellSettings,
    name: str = "volume",
    *,
    tau_electrolyte: float | None = None,
    device: str = "cpu",
    progress: Callable[[dict[str, Any]], Any] | None = None,
) -> CellRun:
    """Measure a volume, map it to a PyBaMM cell and discharge it at every rate.

    Bad input for the volume (a phase that is not there) raises :class:`CellError`; a volume
    that cannot make a cell (e.g. a non-percolating electrolyte) or a rate that fails gives a
    run / discharge whose ``error`` says why.
    """
    from .mapping import base_parameter_values, cell_parameter_values
    from .simulate import run_discharges

    s = settings.validate()
    if s.sigma_active is None and "sigma_active_base" not in s.extra:
        base = base_parameter_values(s.base)
        s.extra["sigma_active_base"] = float(base["Positive electrode conductivity [S.m-1]"])
    run = CellRun(name)
    t0 = time.perf_counter()
    if progress:
        progress({"run": name, "stage": "figures"})
    run.figures = measure_cell_figures(indices, labels, s, tau_electrolyte=tau_electrolyte,
                                       device=device)  # fmt: skip
    run.seconds["figures"] = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        pv, run.parameters = cell_parameter_values(run.figures, s)
        run.parameter_values = pv
        run.seconds["parameters"] = time.perf_counter() - t0
    except CellError as exc:
        run.error = str(exc)
        return run
    if progress:
        progress({"run": name, "stage": "discharges"})
    t0 = time.perf_counter()
    run.discharges = run_discharges(pv, s)
    run.seconds["discharges"] = time.perf_counter() - t0
    return run


def cell_runs(
    volumes: Sequence[tuple[str, np.ndarray]],
    labels: tuple[Any, ...],
    settings: CellSettings,
    *,
    device: str = "cpu",
    progress: Callable[[dict[str, Any]], Any] | None = None,
) -> CellResult:
    """:func:`simulate_cell` for each named volume; the result holds them side by side."""
    runs = []
    for i, (name, vol) in enumerate(volumes):
        if progress:
            progress({"run": name, "stage": "start", "done": i, "total": len(volumes)})
        runs.append(simulate_cell(vol, labels, settings, name, device=device, progress=progress))
    if progress:
        progress({"stage": "done", "done": len(volumes), "total": len(volumes)})
    return CellResult(settings, runs)


def cell_metrics(run: CellRun) -> dict[str, Any]:
    """Flat columns of one run for a sweep row: capacity and energy per rate, key figures."""
    row: dict[str, Any] = {"cell_error": run.error}
    f = run.figures
    if f is not None:
        row.update({"cell:tau_e": f.tau_e, "cell:sigma_electronic": f.sigma_electronic,
                    "cell:accessible": f.accessible,
                    "cell:radius_um": f.particle_radius_geometric * 1e6})  # fmt: skip
    for d in run.discharges:
        r = f"{d.rate:g}C"
        row[f"capacity[{r}]"] = d.capacity if not d.error else float("nan")
        row[f"areal_capacity[{r}]"] = d.areal_capacity if not d.error else float("nan")
        row[f"utilisation[{r}]"] = d.utilisation if not d.error else float("nan")
        row[f"energy[{r}]"] = d.energy if not d.error else float("nan")
        if d.error:
            row["cell_error"] = (row["cell_error"] + "; " if row["cell_error"] else "") + d.error
    return row


_COLUMNS = ("name", "rate", "current_A", "capacity_Ah", "areal_capacity_mAh_cm2", "utilisation",
            "energy_Wh", "mean_voltage_V", "error")  # fmt: skip


@dataclass
class CellResult:
    """The cells of one or more volumes (data and twins) with the settings that made them."""

    settings: CellSettings
    runs: list[CellRun]

    def rows(self) -> list[dict[str, Any]]:
        """One row per run and rate (a run without a cell: one row with its error)."""
        out = []
        for run in self.runs:
            if not run.discharges:
                out.append({"name": run.name, "rate": None, "error": run.error})
            for d in run.discharges:
                out.append({"name": run.name, "rate": d.rate, "current_A": d.current,
                            "capacity_Ah": d.capacity, "areal_capacity_mAh_cm2": d.areal_capacity,
                            "utilisation": d.utilisation, "energy_Wh": d.energy,
                            "mean_voltage_V": d.mean_voltage, "error": d.error})  # fmt: skip
        return out

    def spread(self, prefix: str = "twin") -> list[dict[str, Any]]:
        """Per rate: mean, SD, min and max of the runs whose name starts with ``prefix``."""
        rates = sorted({d.rate for r in self.runs for d in r.discharges})
        out = []
        for rate in rates:
            caps = [d.capacity for r in self.runs if r.name.startswith(prefix)
                    for d in r.discharges if d.rate == rate and not d.error]  # fmt: skip
            if not caps:
                continue
            out.append({"rate": rate, "n": len(caps), "mean": float(np.mean(caps)),
                        "sd": float(np.std(caps, ddof=1)) if len(caps) > 1 else float("nan"),
                        "min": float(np.min(caps)), "max": float(np.max(caps))})  # fmt: skip
        return out

    def __str__(self) -> str:
        lines = []
        for run in self.runs:
            f = run.figures
            if f is not None:
                lines.append(
                    f"{run.name}: ε_el {f.eps_electrolyte:.3f}, ε_AM {f.eps_active:.3f} "
                    f"(accessible {100 * f.accessible:.1f} %), "
                    f"a_AM|el {f.area_active_electrolyte:.4g} 1/m, "
                    f"R {1e6 * f.particle_radius_geometric:.2f} µm (3ε/S_V), "
                    f"τ_el {f.tau_electrolyte:.3f}, "
                    f"τ_e {f.tau_e:.3f}, σ_eff {f.sigma_electronic:.3g} S/m"
                )
            if run.error:
                lines.append(f"{run.name}: no cell — {run.error}")
        head = ["name", "rate", "capacity [A.h]", "mA.h/cm²", "utilisation", "energy [W.h]", "note"]
        body = [[r["name"], "" if r["rate"] is None else f"{r['rate']:g}C",
                 _f(r.get("capacity_Ah")), _f(r.get("areal_capacity_mAh_cm2")),
                 _f(r.get("utilisation")), _f(r.get("energy_Wh")), r.get("error") or ""]
                for r in self.rows()]  # fmt: skip
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
        return "\n".join(lines)

    def to_csv(self, path: str | os.PathLike | None = None, overwrite: bool = False) -> str:
        """The rows as CSV (written atomically to ``path`` when given)."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(_COLUMNS), extrasaction="ignore")
        w.writeheader()
        for r in self.rows():
            w.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                        for k, v in r.items()})  # fmt: skip
        text = buf.getvalue()
        if path is not None:
            _write_text(Path(path), text, overwrite)
        return text

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """JSON-ready: settings, every run's figures, mapping record and discharges."""
        return {"settings": self.settings.to_dict(),
                "runs": [r.to_dict(curves) for r in self.runs],
                "spread": self.spread()}  # fmt: skip

    def figure(self) -> Figure:
        """Voltage against delivered capacity: one panel per run, one curve per rate."""
        from matplotlib.figure import Figure

        runs = [r for r in self.runs if r.discharges] or self.runs
        fig = Figure(figsize=(3.2 * max(1, len(runs)), 3.0), constrained_layout=True)
        axes = fig.subplots(1, max(1, len(runs)), sharey=True, squeeze=False)[0]
        rates = sorted({d.rate for r in self.runs for d in r.discharges})
        colours = {rate: f"C{i}" for i, rate in enumerate(rates)}
        for ax, run in zip(axes, runs, strict=False):
            for d in run.discharges:
                if d.capacity_curve:
                    ax.plot(d.capacity_curve, d.voltage_curve, color=colours[d.rate],
                            label=f"{d.rate:g}C")  # fmt: skip
            ax.set_title(run.name, fontsize=9)
            ax.set_xlabel("capacity [A.h]")
            if run.error:
                ax.text(0.5, 0.5, "no cell:\n" + run.error[:80], transform=ax.transAxes,
                        ha="center", va="center", fontsize=7, wrap=True)  # fmt: skip
        axes[0].set_ylabel("voltage [V]")
        if rates:
            axes[0].legend(fontsize=7)
        return fig

    def write(self, folder: str | os.PathLike, overwrite: bool = False, bpx: bool = True) -> Path:
        """``table.csv``, ``cell.json``, ``discharge.png`` and one BPX file per run into a new
        folder (refused when it exists, unless ``overwrite``)."""
        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise FileExistsError(f"{folder} exists and is not empty; choose another folder "
                                  "or pass overwrite=True (--overwrite)")  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        self.to_csv(folder / "table.csv", overwrite=True)
        text = json.dumps(self.to_dict(), indent=1, default=_json_default)
        _write_text(folder / "cell.json", text, True)
        from ..io import atomic_write

        fig = self.figure()
        atomic_write(folder / "discharge.png",
                     lambda tmp: fig.savefig(tmp, dpi=120, format="png"), True)  # fmt: skip
        if bpx:
            from .bpx_export import write_bpx

            for run in self.runs:
                if run.parameter_values is not None:
                    slug = "".join(c if c.isalnum() else "_" for c in run.name).strip("_")
                    write_bpx(folder / f"{slug}.bpx.json", run.parameter_values,
                              f"napari-gencal cell: {run.name}",
                              "positive electrode from a napari-gencal twin; see cell.json",
                              self.settings.model, overwrite=True)  # fmt: skip
        return folder


def _f(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.4g}"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _write_text(path: Path, text: str, overwrite: bool) -> None:
    from ..io import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), overwrite)
