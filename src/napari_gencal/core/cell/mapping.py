"""Twin figures → a PyBaMM parameter set (the mapping of docs/decisions/cell.md).

The twin replaces the *positive electrode* of a base parameter set (Chen2020 by default: an LG
M50 NMC811 | graphite–SiOx cell); the negative electrode, separator, electrolyte and kinetics
stay the base's. Every value set here is recorded with where it came from.
"""

from __future__ import annotations

from typing import Any

from .figures import CellFigures
from .settings import BASES, CellError, CellSettings, require_pybamm

__all__ = ["base_parameter_values", "cell_parameter_values", "theoretical_capacity"]

P = "Positive electrode "


def base_parameter_values(base: str):
    """The base PyBaMM parameter set, or a clear error naming the known ones."""
    pybamm = require_pybamm()
    if base not in BASES:
        raise CellError(
            f"unknown base parameter set {base!r}; use one of {', '.join(BASES)} (full Li-ion "
            "cells whose positive electrode the twin replaces)"
        )
    return pybamm.ParameterValues(base)


def theoretical_capacity(parameter_values) -> dict[str, float]:
    """The cell's capacity between its voltage limits at equilibrium [A.h] (PyBaMM's electrode
    state-of-health solver) and the electrodes' full capacities."""
    pybamm = require_pybamm()
    param = pybamm.LithiumIonParameters()
    q_n = float(parameter_values.evaluate(param.n.Q_init))
    q_p = float(parameter_values.evaluate(param.p.Q_init))
    q_li = float(parameter_values.evaluate(param.Q_Li_particles_init))
    sol = pybamm.lithium_ion.ElectrodeSOHSolver(parameter_values, param).solve(
        {"Q_Li": q_li, "Q_n": q_n, "Q_p": q_p}
    )
    return {"Q": float(sol["Q"]), "Q_n": q_n, "Q_p": q_p, "Q_Li": q_li}


def _bruggeman_tau(pv, eps: float, key: str) -> float:
    """τ = ε^(1 − b): the base's Bruggeman relation B = ε^b written as a tortuosity factor."""
    b = float(pv[key]) if key in pv.keys() else 1.5
    return float(eps ** (1.0 - b))


def cell_parameter_values(
    figures: CellFigures, settings: CellSettings
) -> tuple[Any, list[dict[str, Any]]]:
    """The PyBaMM parameter values of a cell whose positive electrode is the twin.

    Parameters
    ----------
    figures : CellFigures
    settings : CellSettings

    Returns
    -------
    (pybamm.ParameterValues, list of dict)
        The parameters, and one record per value set: ``name``, ``value``, ``source``.

    Raises
    ------
    CellError
        When the figures cannot make a cell (e.g. a non-percolating electrolyte).
    """
    problems = figures.problems()
    if problems:
        raise CellError("; ".join(problems))
    pv = base_parameter_values(settings.base)
    s, f = settings, figures
    record: list[dict[str, Any]] = []

    def put(name: str, value: Any, source: str) -> None:
        pv.update({name: value}, check_already_exists=False)
        record.append({"name": name, "value": value if not callable(value) else "function",
                       "source": source})  # fmt: skip

    eps_am = f.eps_active * f.accessible
    radius = f.particle_radius_wetted if s.radius == "wetted" else f.particle_radius_geometric
    put(P + "porosity", f.eps_electrolyte, "twin: electrolyte volume fraction")
    put(P + "active material volume fraction", eps_am,
        f"twin: active fraction {f.eps_active:.4f} × accessible share {f.accessible:.4f}")
    put("Positive particle radius [m]", radius,
        "twin: 3 ε_AM / a_AM|electrolyte" if s.radius == "wetted"
        else "twin: 3 ε_AM / S_V(active)")  # fmt: skip
    if s.radius == "geometric":
        # PyBaMM's reacting area is 3 ε_AM / R = S_V(active); scale the exchange current so that
        # the total exchange current stays that of the wetted area a_AM|el
        share = f.area_active_electrolyte / f.surface_active
        j0 = pv[P + "exchange-current density [A.m-2]"]
        put(P + "exchange-current density [A.m-2]",
            (lambda *a, _j=j0, _s=share: _s * _j(*a)) if callable(j0) else share * j0,
            f"base × wetted share a_AM|el / S_V(active) = {share:.4f}")  # fmt: skip
    if s.thickness is not None:
        put(P + "thickness [m]", float(s.thickness), "settings: thickness")
    else:
        record.append({"name": P + "thickness [m]", "value": float(pv[P + "thickness [m]"]),
                       "source": f"base {s.base}"})  # fmt: skip
    put(P + "tortuosity factor (electrolyte)", f.tau_electrolyte,
        "twin: TauFactor tortuosity factor of the electrolyte, through the thickness")
    put(P + "tortuosity factor (electrode)", f.tau_electronic,
        "twin: TauFactor multi-phase τ of active + conductors (Σφσ / σ_eff)")
    put(P + "conductivity [S.m-1]", f.sigma_solid_mean,
        f"twin: Σφσ / (1 − ε) with σ_active {s.sigma_active or s.extra.get('sigma_active_base')}"
        f" S/m, σ_conductor {s.sigma_conductor} S/m (σ_eff = {f.sigma_electronic:.4g} S/m)")
    # the option needs a tortuosity factor in every domain: the base's Bruggeman relation there
    for dom, key_eps in (("Negative electrode", "Negative electrode porosity"),
                         ("Separator", "Separator porosity")):  # fmt: skip
        eps = float(pv[key_eps])
        put(f"{dom} tortuosity factor (electrolyte)",
            _bruggeman_tau(pv, eps, f"{dom} Bruggeman coefficient (electrolyte)"),
            f"base {s.base}: Bruggeman ε^(1−b) of its porosity")  # fmt: skip
    eps_n_solid = 1 - float(pv["Negative electrode porosity"])
    put("Negative electrode tortuosity factor (electrode)",
        _bruggeman_tau(pv, eps_n_solid, "Negative electrode Bruggeman coefficient (electrode)"),
        f"base {s.base}: Bruggeman of its solid fraction")  # fmt: skip
    if s.electrolyte_kind == "solid":
        sigma = float(s.electrolyte_conductivity)  # type: ignore[arg-type]
        put("Cation transference number", 1.0, "solid electrolyte: single-ion conductor")
        put("Thermodynamic factor", 1.0, "solid electrolyte: no salt gradients")
        put("Electrolyte conductivity [S.m-1]", lambda c_e, T, _s=sigma: _s + 0 * c_e,
            f"settings: solid electrolyte conductivity {sigma} S/m (constant)")  # fmt: skip
    if s.cutoff is not None:
        put("Lower voltage cut-off [V]", float(s.cutoff), "settings: cut-off")
    cap = theoretical_capacity(pv)
    put("Nominal cell capacity [A.h]", cap["Q"],
        "PyBaMM electrode SOH: capacity between the voltage limits (defines 1C)")  # fmt: skip
    return pv, record
