"""Constant-current discharges of a PyBaMM cell: capacity, energy and the voltage curve per rate."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .settings import CellSettings, require_pybamm

__all__ = ["Discharge", "run_discharges", "electrode_area"]


@dataclass
class Discharge:
    """One constant-current discharge from full charge to the cut-off.

    Attributes
    ----------
    rate : float
        C-rate (1C = the nominal capacity in one hour).
    current : float
        [A].
    capacity, energy : float
        Delivered [A.h] and [W.h] (``nan`` when the run failed).
    areal_capacity : float
        [mA.h/cm²] per electrode area.
    utilisation : float
        capacity / nominal capacity.
    mean_voltage : float
        energy / capacity [V].
    termination : str
        Why it stopped (PyBaMM's event), or ``""``.
    error : str
        Why there is no result (empty when it ran).
    capacity_curve, voltage_curve : list of float
        The discharge curve (A.h, V).
    seconds : float
    """

    rate: float
    current: float
    capacity: float = float("nan")
    energy: float = float("nan")
    areal_capacity: float = float("nan")
    utilisation: float = float("nan")
    mean_voltage: float = float("nan")
    termination: str = ""
    error: str = ""
    capacity_curve: list[float] = field(default_factory=list)
    voltage_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""
        d = asdict(self)
        if not curves:
            d.pop("capacity_curve")
            d.pop("voltage_curve")
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in d.items()}  # fmt: skip


def electrode_area(parameter_values) -> float:
    """Total electrode area [m²] (height × width × electrode pairs)."""
    pv = parameter_values
    pairs = 1.0
    for key in ("Number of electrodes connected in parallel to make a cell",):
        if key in pv.keys():
            pairs = float(pv[key])
    return float(pv["Electrode height [m]"]) * float(pv["Electrode width [m]"]) * pairs


def run_discharges(parameter_values, settings: CellSettings) -> list[Discharge]:
    """Discharge the cell at every rate of ``settings`` from full charge to the cut-off.

    A rate that fails (the solver gives up, or the voltage is below the cut-off at once) gives a
    :class:`Discharge` whose ``error`` says why; the other rates still run.
    """
    pybamm = require_pybamm()
    pv = parameter_values
    options = {"transport efficiency": "tortuosity factor"}
    model_cls = pybamm.lithium_ion.DFN if settings.model == "DFN" else pybamm.lithium_ion.SPMe
    q_nom = float(pv["Nominal cell capacity [A.h]"])
    v_min = float(pv["Lower voltage cut-off [V]"])
    area_cm2 = electrode_area(pv) * 1e4
    # one model, built and discretised once; the current is an input (3.6× faster than an
    # Experiment per rate, identical capacities); the model's own event stops at the cut-off
    pv = pv.copy()
    pv.update({"Current function [A]": "[input]"})
    sim = pybamm.Simulation(model_cls(options=options), parameter_values=pv)
    out = []
    for rate in settings.rates:
        t0 = time.perf_counter()
        d = Discharge(rate=float(rate), current=float(rate) * q_nom)
        try:
            sol = sim.solve([0.0, 3600.0 / float(rate) * 1.3], inputs={"Current function [A]":
                            d.current}, initial_soc=1.0)  # fmt: skip
            t = sol["Time [s]"].entries
            v = sol["Voltage [V]"].entries
            i = sol["Current [A]"].entries
            q = sol["Discharge capacity [A.h]"].entries
            d.capacity = float(q[-1])
            d.energy = float(np.sum(0.5 * (v[1:] * i[1:] + v[:-1] * i[:-1]) * np.diff(t)) / 3600)
            d.areal_capacity = d.capacity * 1e3 / area_cm2
            d.utilisation = d.capacity / q_nom
            d.mean_voltage = d.energy / d.capacity if d.capacity > 0 else float("nan")
            d.termination = str(getattr(sol, "termination", ""))
            keep = np.unique(np.linspace(0, len(q) - 1, min(len(q), 200)).astype(int))
            d.capacity_curve = [float(x) for x in q[keep]]
            d.voltage_curve = [float(x) for x in v[keep]]
            if d.utilisation < 0.01:
                d.error = (
                    f"the voltage reached the {v_min:g} V cut-off at once: this cell cannot "
                    f"deliver {rate:g}C (try lower rates)"
                )
        except Exception as exc:  # noqa: BLE001 - one failed rate is a row, not a crash
            d.error = (
                f"PyBaMM could not discharge at {rate:g}C — usually a rate beyond what this "
                f"cell can deliver; try lower rates ({type(exc).__name__}: {exc})"
            )
        d.seconds = time.perf_counter() - t0
        out.append(d)
    return out
