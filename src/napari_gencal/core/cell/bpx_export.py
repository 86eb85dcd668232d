"""Export a cell's PyBaMM parameter set as a BPX file (Battery Parameter eXchange, v1).

PyBaMM reads BPX (``pybamm.ParameterValues.create_from_bpx``) but does not write it; this module
writes the inverse of PyBaMM's reader, and validates the result with the ``bpx`` package's
schema before anything is written. Conversions (each documented in docs/decisions/cell.md):

* functions of one variable (OCPs, diffusivities, electrolyte laws) are tabulated at the
  reference temperature (BPX interpolated tables); their activation energies are the base set's
  when it states them as numbers, else 0;
* BPX's reaction rate constant ``k_norm`` is PyBaMM's ``j0 = m·√(c_e c_s (c_max − c_s))``
  prefactor converted: ``k_norm = m · c_max · √c_e0 / F``;
* the surface area per volume is ``3 ε_AM / R`` (PyBaMM derives ε_AM back from it);
* transport efficiency is ``ε / τ`` of the electrolyte; the electrode conductivity BPX carries is
  the *effective* one (``σ (1 − ε) / τ`` in the positive electrode, Bruggeman in the negative).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .settings import CellError, require_pybamm

__all__ = ["to_bpx", "write_bpx"]

_F = 96485.33212


def _value(pv, name: str, *args: float) -> float:
    """A parameter as a number: a constant, or a function evaluated at ``args``."""
    pybamm = require_pybamm()
    v = pv[name]
    if callable(v):
        v = v(*[pybamm.Scalar(a) for a in args])
    return float(v.evaluate() if hasattr(v, "evaluate") else v)


def _table(pv, name: str, xs: np.ndarray, *rest: float) -> dict[str, list[float]] | float:
    """A one-variable function as a BPX table (or the constant)."""
    v = pv[name]
    if not callable(v):
        return float(v.evaluate() if hasattr(v, "evaluate") else v)
    ys = [_value(pv, name, float(x), *rest) for x in xs]
    return {"x": [float(x) for x in xs], "y": [float(y) for y in ys]}


def _electrode(pv, dom: str, particle: str, t_ref: float, c_e0: float) -> dict[str, Any]:
    c_max = float(pv[f"Maximum concentration in {dom.lower()} [mol.m-3]"])
    eps = float(pv[f"{dom} porosity"])
    eps_am = float(pv[f"{dom} active material volume fraction"])
    radius = float(pv[f"{particle} particle radius [m]"])
    tau_key = f"{dom} tortuosity factor (electrolyte)"
    tau = float(pv[tau_key]) if tau_key in pv.keys() else eps ** (
        1 - float(pv[f"{dom} Bruggeman coefficient (electrolyte)"])
    )
    sig = float(pv[f"{dom} conductivity [S.m-1]"])
    tau_s_key = f"{dom} tortuosity factor (electrode)"
    tau_s = float(pv[tau_s_key]) if tau_s_key in pv.keys() else (1 - eps) ** (
        1 - float(pv[f"{dom} Bruggeman coefficient (electrode)"])
    )
    sto = np.linspace(0.0, 1.0, 101)
    sto[0], sto[-1] = 1e-4, 1 - 1e-4  # OCP laws diverge at the ends
    # j0(c_e = 1, c_s = 1, c_max = 2, T_ref) = m for PyBaMM's √(c_e c_s (c_max − c_s)) form
    m = _value(pv, f"{dom} exchange-current density [A.m-2]", 1.0, 1.0, 2.0, t_ref)
    diff_name = f"{particle} particle diffusivity [m2.s-1]"
    if diff_name not in pv.keys():
        diff_name = f"{dom} diffusivity [m2.s-1]"
    sto_lo, sto_hi = _stoichiometry_limits(pv, dom)
    out = {
        "Thickness [m]": float(pv[f"{dom} thickness [m]"]),
        "Porosity": eps,
        "Transport efficiency": eps / tau,
        "Conductivity [S.m-1]": sig * (1 - eps) / tau_s,
        "Particle radius [m]": radius,
        "Surface area per unit volume [m-1]": 3 * eps_am / radius,
        "Minimum stoichiometry": sto_lo,
        "Maximum stoichiometry": sto_hi,
        "Maximum concentration [mol.m-3]": c_max,
        "Diffusivity [m2.s-1]": _table(pv, diff_name, sto, t_ref),
        "OCP [V]": _table(pv, f"{dom} OCP [V]", sto),
        "Reaction rate constant [mol.m-2.s-1]": m * c_max * np.sqrt(c_e0) / _F,
    }
    return out


def _stoichiometry_limits(pv, dom: str) -> tuple[float, float]:
    """Stoichiometries at 0 % and 100 % state of charge (PyBaMM's electrode SOH)."""
    pybamm = require_pybamm()
    x0, x100, y100, y0 = pybamm.lithium_ion.get_min_max_stoichiometries(pv)
    if dom.startswith("Negative"):
        return float(min(x0, x100)), float(max(x0, x100))
    return float(min(y0, y100)), float(max(y0, y100))


def _optional(pv, names: dict[str, str]) -> dict[str, float]:
    """BPX fields that the base set has (PyBaMM's reader needs some the schema leaves optional)."""
    return {bpx: float(pv[name]) for bpx, name in names.items() if name in pv.keys()}


def to_bpx(parameter_values, title: str, description: str = "", model: str = "DFN") -> dict:
    """The BPX document (a dict) of a PyBaMM parameter set, validated by the ``bpx`` schema.

    Raises
    ------
    ImportError
        The ``bpx`` package is missing (``pip install 'napari-gencal[cell]'``).
    CellError
        The parameter set has a form BPX cannot express (named in the message).
    """
    try:
        import bpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "BPX export needs the bpx package: pip install 'napari-gencal[cell]'"
        ) from exc
    pv = parameter_values
    t_ref = float(pv["Reference temperature [K]"])
    c_e0 = float(pv["Initial concentration in electrolyte [mol.m-3]"])
    ce = np.linspace(0.0, 4000.0, 81)
    ce[0] = 1.0
    try:
        doc = {
            "Header": {"BPX": 1.0, "Title": title, "Description": description or title,
                       "Model": model},  # fmt: skip
            "Parameterisation": {
                "Cell": {
                    "Electrode area [m2]": float(pv["Electrode height [m]"])
                    * float(pv["Electrode width [m]"]),
                    "Number of electrode pairs connected in parallel to make a cell": int(
                        pv["Number of electrodes connected in parallel to make a cell"]
                    ),
                    "Lower voltage cut-off [V]": float(pv["Lower voltage cut-off [V]"]),
                    "Upper voltage cut-off [V]": float(pv["Upper voltage cut-off [V]"]),
                    "Nominal cell capacity [A.h]": float(pv["Nominal cell capacity [A.h]"]),
                    "Reference temperature [K]": t_ref,
                    **_optional(pv, {"External surface area [m2]": "Cell cooling surface area [m2]",
                                     "Volume [m3]": "Cell volume [m3]"}),
                },
                "Electrolyte": {
                    "Cation transference number": float(pv["Cation transference number"]),
                    "Diffusivity [m2.s-1]": _table(
                        pv, "Electrolyte diffusivity [m2.s-1]", ce, t_ref
                    ),
                    "Conductivity [S.m-1]": _table(
                        pv, "Electrolyte conductivity [S.m-1]", ce, t_ref
                    ),
                },
                "Negative electrode": _electrode(pv, "Negative electrode", "Negative", t_ref, c_e0),
                "Positive electrode": _electrode(pv, "Positive electrode", "Positive", t_ref, c_e0),
                "Separator": {
                    "Thickness [m]": float(pv["Separator thickness [m]"]),
                    "Porosity": float(pv["Separator porosity"]),
                    "Transport efficiency": float(pv["Separator porosity"])
                    / float(pv["Separator tortuosity factor (electrolyte)"])
                    if "Separator tortuosity factor (electrolyte)" in pv.keys()
                    else float(pv["Separator porosity"])
                    ** float(pv["Separator Bruggeman coefficient (electrolyte)"]),
                },
            },
            "State": {"Initial conditions": {
                "Initial electrolyte concentration [mol.m-3]": c_e0,
                "Initial temperature [K]": float(pv["Initial temperature [K]"]),
            }},  # fmt: skip
        }
    except KeyError as exc:
        raise CellError(f"the parameter set lacks {exc} that BPX needs") from None
    bpx.parse_bpx_obj(json.loads(json.dumps(doc)))  # the schema's own validation
    return doc


def write_bpx(path: str | os.PathLike, parameter_values, title: str, description: str = "",
              model: str = "DFN", overwrite: bool = False) -> Path:  # fmt: skip
    """Write :func:`to_bpx` as JSON, atomically; never over an existing file unless asked."""
    from ..io import atomic_write

    doc = to_bpx(parameter_values, title, description, model)
    text = json.dumps(doc, indent=1)
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), overwrite)
    return path
