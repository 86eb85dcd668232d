"""From twin to cell: microstructure figures → a PyBaMM parameter set → discharges, and BPX.

The flow (docs/cell.md; every mapping in docs/decisions/cell.md):

* :func:`~.figures.measure_cell_figures` — fractions, pair interfaces, the electrolyte's
  tortuosity factor, the solid's effective conductivity, the electrode tortuosity factor and
  the accessible active material of one volume (:class:`~.figures.CellFigures`);
* :func:`~.mapping.cell_parameter_values` — the base set (Chen2020) with the twin as its
  positive electrode and PyBaMM's ``"transport efficiency": "tortuosity factor"`` option;
* :func:`~.simulate.run_discharges` — a DFN (or SPMe) discharge per C-rate;
* :func:`~.bpx_export.write_bpx` — the parameter set as a BPX file;
* :func:`~.run.cell_runs` / :class:`~.run.CellResult` — data and twins side by side.

PyBaMM, TauFactor, PyAMG and bpx are the optional extra ``napari-gencal[cell]``; they are
imported when used.
"""

from __future__ import annotations

from .figures import CellFigures, measure_cell_figures
from .run import CellResult, CellRun, cell_metrics, cell_runs, simulate_cell
from .settings import BASES, CellError, CellSettings, parse_length, parse_rates, pybamm_available

__all__ = [
    "BASES",
    "CellError",
    "CellFigures",
    "CellResult",
    "CellRun",
    "CellSettings",
    "cell_metrics",
    "cell_runs",
    "measure_cell_figures",
    "parse_length",
    "parse_rates",
    "pybamm_available",
    "simulate_cell",
]
