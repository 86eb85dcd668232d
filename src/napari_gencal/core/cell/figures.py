"""The microstructure figures a cell model needs, measured on one label volume."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .settings import CellError, CellSettings

__all__ = ["CellFigures", "measure_cell_figures"]


@dataclass
class CellFigures:
    """Figures of one electrode volume, in SI units (areas per volume in 1/m).

    Attributes
    ----------
    eps_electrolyte, eps_active, eps_conductor, eps_inert : float
        Volume fractions (the conductors summed).
    area_active_electrolyte : float
        Active|electrolyte interface area per volume [1/m] (where the reaction happens).
    surface_active : float
        Whole active surface per volume [1/m] (S_V of the active phase).
    interfaces : dict
        Every pair's area per volume [1/m], keyed ``"label|label"``.
    tpb : float or None
        Triple-phase-boundary length per volume [1/m²] (three phases only).
    tau_electrolyte : float
        Tortuosity factor of the electrolyte through the thickness (TauFactor; ``nan`` when it
        does not percolate).
    sigma_electronic : float
        Effective electronic conductivity of the solid [S/m] (TauFactor multi-phase).
    tau_electronic : float
        ``Σ φ_i σ_i / σ_eff`` of the solid.
    sigma_solid_mean : float
        ``Σ φ_i σ_i / (1 − ε)``: the solid's mean conductivity (PyBaMM's "electrode
        conductivity", with τ_electronic as its tortuosity factor).
    tau_e : float
        Electrode tortuosity factor (reaction on the active|electrolyte faces; ``nan`` when
        not asked for).
    accessible, accessible_ionic, accessible_electronic : float
        Shares of the active phase reachable (both / ionically / electronically).
    electrolyte_percolates, electronic_percolates : bool
    shape : list of int
    voxel_size : float
    seconds : dict
        Time of each part.
    warnings : list of str
    """

    eps_electrolyte: float
    eps_active: float
    eps_conductor: float
    eps_inert: float
    area_active_electrolyte: float
    surface_active: float
    interfaces: dict[str, float]
    tpb: float | None
    tau_electrolyte: float
    sigma_electronic: float
    tau_electronic: float
    sigma_solid_mean: float
    tau_e: float
    accessible: float
    accessible_ionic: float
    accessible_electronic: float
    electrolyte_percolates: bool
    electronic_percolates: bool
    shape: list[int]
    voxel_size: float
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def particle_radius_wetted(self) -> float:
        """3 ε_AM / a_AM|el [m] (method.md §7)."""
        return 3 * self.eps_active / self.area_active_electrolyte

    @property
    def particle_radius_geometric(self) -> float:
        """3 ε_AM / S_V(AM) [m]: the radius of spheres with the active phase's surface."""
        return 3 * self.eps_active / self.surface_active

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` becomes ``None``)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not np.isfinite(v):
                d[k] = None
        d["particle_radius_wetted"] = _finite(self.particle_radius_wetted)
        d["particle_radius_geometric"] = _finite(self.particle_radius_geometric)
        return d

    def problems(self) -> list[str]:
        """Why a cell cannot be built from these figures (empty: it can)."""
        out = []
        if not self.electrolyte_percolates:
            out.append(
                "the electrolyte phase does not percolate through the thickness: no ionic path "
                "from the separator to the current collector, so the electrode cannot be "
                "discharged (check the electrolyte label and the axis)"
            )
        if not self.electronic_percolates:
            out.append(
                "the active + conductor phases do not percolate through the thickness: no "
                "electronic path to the current collector (check the conductor labels)"
            )
        if self.area_active_electrolyte <= 0:
            out.append("the active phase never touches the electrolyte: no reaction area")
        if self.accessible <= 0:
            out.append("no active material is reachable both ionically and electronically")
        return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def measure_cell_figures(
    indices: np.ndarray,
    labels: tuple[Any, ...],
    settings: CellSettings,
    *,
    tau_electrolyte: float | None = None,
    device: str = "cpu",
) -> CellFigures:
    """Measure the figures of one phase-index volume.

    Parameters
    ----------
    indices : ndarray
        3D phase indices ``0 .. k-1``.
    labels : tuple
        Label value of each index (to find the settings' phases).
    settings : CellSettings
    tau_electrolyte : float, optional
        A tortuosity factor of the electrolyte already measured along the settings' axis (a
        sweep's TauFactor column): skips that solve.
    device : str
        TauFactor's device.

    Raises
    ------
    CellError
        A settings phase that is not in the volume.
    """
    from ..descriptors import (
        accessible_active_material,
        composite_conductivity,
        effective_transport,
        electrode_tortuosity,
        interfacial_areas,
        specific_surface_area,
        triple_phase_boundary_density,
    )
    from ..descriptors.interfaces import interface_key

    arr = np.asarray(indices)
    if arr.ndim != 3:
        raise CellError(f"the cell needs a 3D volume; got shape {arr.shape}")
    k = len(labels)
    text = [str(v) for v in labels]

    def index_of(label: Any, role: str) -> int:
        if str(label) not in text:
            raise CellError(
                f"the {role} label {label} is not a phase of the volume (labels {list(labels)}); "
                "pass the label values as in the data, e.g. --active 85 --electrolyte 0"
            )
        return text.index(str(label))

    s = settings
    am, el = index_of(s.active, "active"), index_of(s.electrolyte, "electrolyte")
    cond = tuple(index_of(c, "conductor") for c in s.conductors)
    h = float(s.voxel_size)
    seconds: dict[str, float] = {}
    warnings: list[str] = []
    t0 = time.perf_counter()
    frac = np.bincount(arr.ravel(), minlength=k) / arr.size
    if frac[am] == 0 or frac[el] == 0:
        raise CellError(
            f"the {'active' if frac[am] == 0 else 'electrolyte'} phase is absent from the volume"
        )
    pairs = interfacial_areas(arr, k)
    sv = specific_surface_area(arr, k)
    tpb = triple_phase_boundary_density(arr, n_phases=k) if k == 3 else None
    seconds["interfaces"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc = accessible_active_material(arr, am, el, cond, s.axis, n_phases=k,
                                     separator=s.separator)  # fmt: skip
    seconds["accessibility"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if tau_electrolyte is None:
        tr = effective_transport(arr, el, s.axis, n_phases=k, iter_limit=s.iter_limit,
                                 device=device)  # fmt: skip
        tau_el = tr.tau_factor
        if tr.percolates and not tr.converged:
            warnings.append("TauFactor did not converge for the electrolyte; raise iter_limit")
    else:
        tau_el = float(tau_electrolyte)
    seconds["tau_electrolyte"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sigma_am = s.sigma_active if s.sigma_active is not None else s.extra.get("sigma_active_base")
    if sigma_am is None:
        raise CellError("sigma_active is unknown: set it or let cell() take it from the base")
    cc = composite_conductivity(arr, {am: float(sigma_am), **{c: s.sigma_conductor for c in cond}},
                                s.axis, n_phases=k, iter_limit=2 * s.iter_limit,
                                device=device)  # fmt: skip
    if cc.percolates and not cc.converged:
        warnings.append("TauFactor did not converge for the solid; raise iter_limit")
    seconds["sigma_electronic"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tau_e = float("nan")
    if s.electrode_tortuosity:
        tau_e = electrode_tortuosity(arr, el, (am,), s.axis, n_phases=k,
                                     separator=s.separator).tau_e  # fmt: skip
        seconds["tau_e"] = time.perf_counter() - t0
    eps = float(frac[el])
    return CellFigures(
        eps_electrolyte=eps,
        eps_active=float(frac[am]),
        eps_conductor=float(sum(frac[c] for c in cond)),
        eps_inert=float(1 - eps - frac[am] - sum(frac[c] for c in cond)),
        area_active_electrolyte=pairs[tuple(sorted((am, el)))] / h,
        surface_active=float(sv[am]) / h,
        interfaces={interface_key(labels[i], labels[j]): v / h for (i, j), v in pairs.items()},
        tpb=None if tpb is None else tpb / h**2,
        tau_electrolyte=float(tau_el),
        sigma_electronic=cc.sigma_eff,
        tau_electronic=cc.tau,
        sigma_solid_mean=cc.sigma_mean / max(1 - eps, 1e-12),
        tau_e=tau_e,
        accessible=acc.fraction,
        accessible_ionic=acc.ionic,
        accessible_electronic=acc.electronic,
        electrolyte_percolates=bool(np.isfinite(tau_el)) and acc.electrolyte_percolates,
        electronic_percolates=cc.percolates,
        shape=list(arr.shape),
        voxel_size=h,
        seconds=seconds,
        warnings=warnings,
    )
