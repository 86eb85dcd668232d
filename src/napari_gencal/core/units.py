"""Physical units: voxel sizes with their unit, unit conversion, and twins at a requested spacing.

The units rule (docs/architecture.md): a :class:`~napari_gencal.core.io.LabelImage` carries its
voxel size ``(dz, dy, dx)`` and unit; the core computes in physical units when the voxel size is
known and in voxels otherwise, and says which. A model stores its lengths in voxels of its own
``voxel_size``; :func:`model_at_voxel_size` gives the same model on any other lattice, exactly,
through ``length_scale`` (and the stretch ``b`` when the requested voxels are not cubic).

* :func:`parse_voxel_size` — ``"0.1,0.02,0.02"``, ``"0.4um"``, ``"100 nm"``, a number or a
  sequence → a checked ``(sizes, unit)``.
* :func:`normalize_unit`, :func:`unit_factor`, :func:`convert` — µm, nm, mm, cm, m.
* :func:`check_voxel_size` — positive, finite, one value per axis; the message says the fix.
* :func:`length_unit_label` — ``"µm"`` or ``"voxel"`` for tables and reports.
* :func:`model_at_voxel_size` — the model whose realization at voxel size ``d`` is the twin.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .model import ExcursionModel

__all__ = [
    "UnitError",
    "UNITS",
    "normalize_unit",
    "unit_factor",
    "convert",
    "parse_voxel_size",
    "check_voxel_size",
    "length_unit_label",
    "model_at_voxel_size",
]

#: Metres per unit, by canonical name.
UNITS: dict[str, float] = {"nm": 1e-9, "um": 1e-6, "mm": 1e-3, "cm": 1e-2, "m": 1.0}
_ALIASES = {
    "nm": "nm", "nanometer": "nm", "nanometre": "nm", "nanometers": "nm", "nanometres": "nm",
    "um": "um", "µm": "um", "μm": "um", "\\u00b5m": "um", "micron": "um", "microns": "um",
    "micrometer": "um", "micrometre": "um", "micrometers": "um", "micrometres": "um",
    "mm": "mm", "millimeter": "mm", "millimetre": "mm", "cm": "cm", "m": "m", "meter": "m",
    "metre": "m", "meters": "m", "metres": "m",
}  # fmt: skip
#: How a unit is printed in tables.
_DISPLAY = {"nm": "nm", "um": "µm", "mm": "mm", "cm": "cm", "m": "m"}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


class UnitError(ValueError):
    """A voxel size or unit that cannot be used; the message names the problem and the fix."""


def normalize_unit(unit: str | None) -> str | None:
    """Canonical unit name (``"um"``, ``"nm"``, …) or None; unknown names are refused.

    ``"pixel"``, ``"voxel"`` and ``""`` mean "no physical unit" and give None.
    """
    if unit is None:
        return None
    u = str(unit).strip()
    if u.lower() in ("", "pixel", "pixels", "px", "voxel", "voxels", "unit", "none"):
        return None
    key = u if u in _ALIASES else u.lower()
    if key not in _ALIASES:
        raise UnitError(
            f"unknown length unit {unit!r}; use one of nm, um (µm, micron), mm, cm, m"
        )
    return _ALIASES[key]


def unit_factor(from_unit: str | None, to_unit: str | None) -> float:
    """Multiply a length in ``from_unit`` by this to get it in ``to_unit``."""
    a, b = normalize_unit(from_unit), normalize_unit(to_unit)
    if a == b:
        return 1.0
    if a is None or b is None:
        raise UnitError(
            f"cannot convert between {from_unit or 'voxels'} and {to_unit or 'voxels'}: a voxel "
            "has no physical length until a voxel size is given (e.g. --voxel-size 0.4um)"
        )
    return UNITS[a] / UNITS[b]


def convert(values: float | Sequence[float], from_unit: str | None, to_unit: str | None) -> Any:
    """Lengths ``values`` (a number or a sequence) from one unit to another."""
    f = unit_factor(from_unit, to_unit)
    if np.isscalar(values):
        return float(values) * f  # type: ignore[arg-type]
    return tuple(float(v) * f for v in values)  # type: ignore[union-attr]


def check_voxel_size(
    voxel_size: float | Sequence[float], ndim: int | None = None, what: str = "voxel size"
) -> tuple[float, ...]:
    """A voxel size as a tuple of positive finite floats, one per axis (one value: isotropic).

    Raises
    ------
    UnitError
        Zeros, negatives, NaN, or the wrong number of values — with the expected form.
    """
    vals = [voxel_size] if np.isscalar(voxel_size) else list(voxel_size)  # type: ignore[arg-type]
    try:
        out = tuple(float(v) for v in vals)
    except (TypeError, ValueError):
        raise UnitError(f"{what} must be numbers, got {voxel_size!r}") from None
    if ndim is not None and len(out) == 1:
        out = out * ndim
    if not out or any(not math.isfinite(v) or v <= 0 for v in out):
        raise UnitError(
            f"{what} must be positive finite numbers, got {voxel_size!r}; give the size of one "
            "voxel per axis (z, y, x), e.g. 0.1,0.02,0.02 or 0.4um"
        )
    if ndim is not None and len(out) != ndim:
        raise UnitError(
            f"{what} has {len(out)} values for a {ndim}D image; give one value (isotropic) or "
            f"{ndim} in axis order ({'z, y, x' if ndim == 3 else 'y, x'})"
        )
    return out


def parse_voxel_size(
    value: str | float | Sequence[float] | None,
    ndim: int | None = None,
    unit: str | None = None,
) -> tuple[tuple[float, ...] | None, str | None]:
    """Read a voxel size as the user writes it.

    Parameters
    ----------
    value : str, float, sequence or None
        ``"0.1,0.02,0.02"`` (z, y, x), ``"0.4"``, ``"0.4um"``, ``"100 nm"``,
        ``"0.1um,0.02um,0.02um"``, a number or a sequence of numbers.
    ndim : int, optional
        Number of axes; one value is then repeated (isotropic).
    unit : str, optional
        Unit to assume when ``value`` names none.

    Returns
    -------
    sizes : tuple of float or None
    unit : str or None
        Canonical unit name (``"um"``), or None when none was given.
    """
    if value is None:
        return None, normalize_unit(unit)
    if not isinstance(value, str):
        return check_voxel_size(value, ndim), normalize_unit(unit)  # type: ignore[arg-type]
    text = value.strip()
    parts = [p.strip() for p in re.split(r"[,;x×]\s*(?=[-+.\d])|\s+(?=[-+.\d])", text) if p.strip()]
    nums: list[float] = []
    units: set[str | None] = set()
    for p in parts:
        m = re.fullmatch(rf"({_NUMBER})\s*([^\d\s,;]*)", p)
        if m is None:
            raise UnitError(
                f"could not read a voxel size from {value!r}; write numbers in axis order "
                "(z, y, x) with an optional unit, e.g. 0.1,0.02,0.02 or 0.4um"
            )
        nums.append(float(m.group(1)))
        units.add(normalize_unit(m.group(2)) if m.group(2) else None)
    named = {u for u in units if u is not None}
    if len(named) > 1:
        raise UnitError(f"{value!r} mixes units {sorted(named)}; use one unit for every axis")
    u = named.pop() if named else normalize_unit(unit)
    return check_voxel_size(nums, ndim), u


def length_unit_label(unit: str | None, voxel_size: Any = None) -> str:
    """How lengths are labelled in tables: ``"µm"`` etc., or ``"voxel"`` without a voxel size."""
    if voxel_size is None:
        return "voxel"
    try:
        u = normalize_unit(unit)
    except UnitError:
        return str(unit)
    return _DISPLAY[u] if u is not None else "unit"


def model_at_voxel_size(
    model: ExcursionModel,
    voxel_size: float | Sequence[float],
    unit: str | None = None,
) -> ExcursionModel:
    """The model whose realization on voxels of size ``voxel_size`` is the twin at that spacing.

    A model's lengths are in voxels of its ``voxel_size`` ``d0``; on voxels of size ``d`` every
    length is ``d0 / d`` times as many voxels, so the twin is the model with ``length_scale``
    multiplied by ``d0 / d`` — exact, because the kernels are evaluated at scaled coordinates,
    not resampled. When the factors differ between axes (non-cubic voxels requested, or a model
    stored on non-cubic voxels) the two axes across ``anisotropy_axis`` must share one factor
    ``f``; the stretch b along that axis (and each field's b) is multiplied by ``f_axis / f``.

    Parameters
    ----------
    model : ExcursionModel
        With a ``voxel_size`` (calibrated with a known pixel size).
    voxel_size : float or sequence of float
        The requested voxel size; one value: cubic voxels.
    unit : str, optional
        Unit of ``voxel_size`` (default: the model's). Converted when it differs.

    Returns
    -------
    ExcursionModel
        ``model`` itself when the spacing is already the model's (the identical volume), else a
        validated copy with the new ``length_scale``, stretch and ``voxel_size``.

    Raises
    ------
    UnitError
        The model has no voxel size, the sizes are not positive, units do not convert, or the
        requested anisotropy cannot be expressed by the model's stretch axis.
    """
    if model.voxel_size is None:
        raise UnitError(
            "the model has no voxel size, so a twin at a physical spacing is undefined; "
            "calibrate with the pixel size (e.g. --voxel-size 0.4um), or set model.voxel_size"
        )
    d0 = check_voxel_size(model.voxel_size, None, "the model's voxel size")
    d0 = d0[-1:] * (3 - len(d0)) + d0 if len(d0) < 3 else d0
    d = check_voxel_size(voxel_size, 3)
    m_unit = normalize_unit(model.unit)
    u = normalize_unit(unit) if unit is not None else m_unit
    if u != m_unit:
        if u is None or m_unit is None:
            raise UnitError(
                f"the requested voxel size is in {u or 'no unit'} but the model's is in "
                f"{m_unit or 'no unit'}; give the voxel size in the model's unit"
            )
        d = tuple(v * unit_factor(u, m_unit) for v in d)
    f = [a / b for a, b in zip(d0, d, strict=True)]
    if all(math.isclose(x, 1.0, rel_tol=1e-12) for x in f):
        return model
    ax = int(model.anisotropy_axis)
    across = [f[i] for i in range(3) if i != ax]
    if not math.isclose(across[0], across[1], rel_tol=1e-9):
        raise UnitError(
            f"voxel size {d} stretches the two axes across the model's stretch axis "
            f"({'zyx'[ax]}) differently; the model can be generated at any spacing that is equal "
            "on those two axes (e.g. cubic voxels, or a different z spacing)"
        )
    g = across[0]
    rb = f[ax] / g
    out = replace(
        model,
        length_scale=float(model.length_scale) * g,
        anisotropy=float(model.anisotropy) * rb,
        anisotropy_fields={k: float(v) * rb for k, v in model.anisotropy_fields.items()},
        voxel_size=tuple(float(v) for v in d),
        unit=m_unit,
        metadata=dict(model.metadata),
    )
    try:
        return out.validate()
    except ValueError as exc:
        raise UnitError(
            f"a twin at voxel size {d} {m_unit or ''} needs {exc}; choose a spacing closer to the "
            f"model's own {d0}"
        ) from None
