"""What a cell simulation needs to know that a label volume does not say, and its checks."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = [
    "CellError",
    "CellSettings",
    "parse_length",
    "parse_rates",
    "pybamm_available",
    "require_pybamm",
    "BASES",
]

#: PyBaMM parameter sets that describe a full Li-ion cell with a positive electrode we can replace.
BASES = ("Chen2020", "Marquis2019", "Mohtat2020", "OKane2022", "Ecker2015", "Prada2013")

_UNITS = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "μm": 1e-6, "micron": 1e-6, "nm": 1e-9}


class CellError(ValueError):
    """Bad input to the cell simulation; the message names the problem and the fix."""


def parse_length(value: Any, what: str = "length", default_unit: str | None = None) -> float:
    """A length in metres from ``"0.4um"``, ``"60 µm"``, ``"1e-6 m"`` or a number.

    A bare number needs ``default_unit`` (e.g. ``"um"``), so that nobody passes 0.4 meaning µm
    and gets metres.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if default_unit is None:
            raise CellError(
                f"{what} {value!r} has no unit; write it with one, e.g. '{value}um' or '{value}nm'"
            )
        num, unit = float(value), default_unit
    else:
        m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([a-zA-Zµμ]*)\s*", str(value))
        if not m:
            raise CellError(f"{what} {value!r} is not a length; write e.g. '0.4um' or '60 um'")
        try:
            num = float(m.group(1))
        except ValueError:
            raise CellError(f"{what} {value!r} is not a number with a unit") from None
        unit = m.group(2) or default_unit
        if unit is None:
            raise CellError(f"{what} {value!r} has no unit; write e.g. '{num}um'")
    if unit not in _UNITS:
        raise CellError(f"{what}: unknown unit {unit!r}; use one of m, mm, um, nm")
    out = num * _UNITS[unit]
    if not out > 0:
        raise CellError(f"{what} must be positive, got {value!r}")
    return out


def parse_rates(rates: str | Sequence[float]) -> tuple[float, ...]:
    """C-rates from ``"0.2,1,2,3"`` or a sequence; each must be positive."""
    if isinstance(rates, str):
        parts = [p.strip().upper().rstrip("C") for p in rates.split(",") if p.strip()]
        try:
            vals = tuple(float(p) for p in parts)
        except ValueError:
            raise CellError(f"rates {rates!r} must be numbers, e.g. '0.2,1,2,3'") from None
    else:
        vals = tuple(float(r) for r in rates)
    if not vals or any(not (v > 0) for v in vals):
        raise CellError(f"rates must be positive C-rates, got {rates!r}")
    return vals


def pybamm_available() -> bool:
    """Whether PyBaMM can be imported."""
    try:
        import importlib.util

        return importlib.util.find_spec("pybamm") is not None
    except (ImportError, ValueError):  # pragma: no cover
        return False


def require_pybamm():
    """Import PyBaMM (telemetry off, quietly) or say how to install it."""
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")  # never prompt, never send
    try:
        import pybamm
    except ImportError as exc:
        raise ImportError(
            "the cell simulation needs PyBaMM and TauFactor: pip install 'napari-gencal[cell]'"
        ) from exc
    return pybamm


@dataclass
class CellSettings:
    """How a twin becomes a cell (every field is recorded with the result).

    Attributes
    ----------
    active, electrolyte : label
        Label values of the active material and of the ion-conducting phase.
    conductors : tuple of labels
        Further electron-conducting phases (carbon binder). Any other phase is inert.
    voxel_size : float
        Edge of a voxel in metres.
    thickness : float or None
        Electrode thickness in metres (default: the base parameter set's).
    base : str
        PyBaMM parameter set whose cell the twin's positive electrode goes into.
    rates : tuple of float
        Discharge C-rates (1C = the cell's theoretical capacity in one hour).
    model : {"DFN", "SPMe"}
    axis, separator : str
        Through-plane axis of the volume and which end faces the separator.
    sigma_active, sigma_conductor : float or None
        Electronic conductivities [S/m] of the active phase (default: the base set's positive
        electrode conductivity) and of the conductors (default 10 S/m, a carbon-binder domain).
    electrolyte_kind : {"liquid", "solid"}
        ``"solid"``: a solid electrolyte as a single-ion conductor (t+ = 1, no salt gradients)
        with ``electrolyte_conductivity`` [S/m]; see docs/decisions/cell.md.
    electrolyte_conductivity : float or None
        Needed for ``"solid"``; ignored for liquids (the base's concentration-dependent law).
    radius : {"geometric", "wetted"}
        ``"geometric"`` (default): R = 3 ε_AM / S_V(active), the radius of spheres with the
        active phase's surface (the solid-diffusion length), with the exchange current scaled
        by the wetted share a_AM|el / S_V(active) so that the reacting area stays a_AM|el.
        ``"wetted"``: R = 3 ε_AM / a_AM|el (method.md §7's first reading; larger R where binder
        covers the particles, so a too long diffusion path). See docs/decisions/cell.md.
    cutoff : float or None
        Lower voltage cut-off [V] (default: the base set's).
    iter_limit : int
        TauFactor iteration budget.
    electrode_tortuosity : bool
        Also solve for the electrode tortuosity factor τ_e (a figure of its own; it does not
        enter the DFN, which resolves where the reaction happens itself). Sweeps skip it.
    """

    active: Any
    electrolyte: Any
    conductors: tuple[Any, ...] = ()
    voxel_size: float = 0.0
    thickness: float | None = None
    base: str = "Chen2020"
    rates: tuple[float, ...] = (0.2, 1.0, 2.0, 3.0)
    model: str = "DFN"
    axis: str = "z"
    separator: str = "start"
    sigma_active: float | None = None
    sigma_conductor: float = 10.0
    electrolyte_kind: str = "liquid"
    electrolyte_conductivity: float | None = None
    radius: str = "geometric"
    cutoff: float | None = None
    iter_limit: int = 10000
    electrode_tortuosity: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> CellSettings:
        """Check the settings; return self. Raises :class:`CellError` naming the fix."""
        if not (isinstance(self.voxel_size, int | float) and self.voxel_size > 0):
            raise CellError(
                "the cell needs the voxel size in physical units: pass voxel_size='0.4um' "
                "(--voxel-size 0.4um)"
            )
        if not 1e-10 < self.voxel_size < 1e-3:
            raise CellError(f"voxel size {self.voxel_size} m is implausible; give it with a unit")
        if self.thickness is not None and not 1e-7 < self.thickness < 1e-2:
            raise CellError(f"thickness {self.thickness} m is implausible; give it with a unit")
        labels = [self.active, self.electrolyte, *self.conductors]
        if len({str(v) for v in labels}) != len(labels):
            raise CellError(
                f"active, electrolyte and conductors must be different labels: {labels}"
            )
        if self.model not in ("DFN", "SPMe"):
            raise CellError(f"model must be 'DFN' or 'SPMe', got {self.model!r}")
        if self.electrolyte_kind not in ("liquid", "solid"):
            raise CellError(
                f"electrolyte_kind must be 'liquid' or 'solid', got {self.electrolyte_kind!r}"
            )
        if self.electrolyte_kind == "solid" and not (
            self.electrolyte_conductivity and self.electrolyte_conductivity > 0
        ):
            raise CellError(
                "a solid electrolyte needs its ionic conductivity: electrolyte_conductivity=0.3 "
                "(S/m; --electrolyte-conductivity 0.3)"
            )
        if self.radius not in ("geometric", "wetted"):
            raise CellError(f"radius must be 'geometric' or 'wetted', got {self.radius!r}")
        if self.axis not in ("z", "y", "x"):
            raise CellError(f"axis must be z, y or x, got {self.axis!r}")
        if self.separator not in ("start", "end"):
            raise CellError(f"separator must be 'start' or 'end', got {self.separator!r}")
        for name in ("sigma_active", "sigma_conductor"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise CellError(f"{name} must be a positive conductivity in S/m, got {v}")
        self.rates = parse_rates(self.rates)
        return self

    def replace(self, **changes: Any) -> CellSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        d = asdict(self)
        d["conductors"] = list(self.conductors)
        d["rates"] = list(self.rates)
        return d
